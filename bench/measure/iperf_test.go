package measure

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The samples in testdata were captured from Debian's iperf 3.12 on
// loopback with the arguments Iperf3Test.Args gives: -t 1 -i 0 -J, then
// -P 8 -R, then against a port nobody listens on, then while the server
// ran another client's test, then (-P 8 -R) against a server that reset
// the control connection after the cookie, as a busy iperf3 server's
// answer arrives through a tunnel.
func TestParseIperf3(t *testing.T) {
	for _, tc := range []struct {
		file    string
		bytes   int64
		seconds float64
		err     error
	}{
		{"iperf3-up.json", 1173094400, 1.000914, nil},
		{"iperf3-P8-R.json", 1104936960, 1.003155, nil},
		{"iperf3-refused.json", 0, 0, ErrIperf3},
		{"iperf3-busy.json", 0, 0, ErrIperf3Busy},
		{"iperf3-reset-before-test.json", 0, 0, ErrIperf3Busy},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseIperf3(b)
			if !errors.Is(err, tc.err) || tc.err != nil && !errors.Is(err, ErrIperf3) {
				t.Fatalf("ParseIperf3: %v, want %v", err, tc.err)
			}
			if errors.Is(err, ErrIperf3Busy) != (tc.err == ErrIperf3Busy) {
				t.Errorf("ParseIperf3: %v: busy is %v", err, errors.Is(err, ErrIperf3Busy))
			}
			if got.Bytes != tc.bytes || got.Seconds != tc.seconds {
				t.Errorf("ParseIperf3 = %+v, want %d bytes in %vs", got, tc.bytes, tc.seconds)
			}
		})
	}
	// The other reset before the test, seen through a tunnel (the row
	// reset the client while it connected): busy too.
	reset := `{"start":{"connected":[]},"error":"unable to connect to server: Connection reset by peer"}`
	if _, err := ParseIperf3([]byte(reset)); !errors.Is(err, ErrIperf3Busy) || !errors.Is(err, ErrIperf3) {
		t.Errorf("ParseIperf3(%s) = %v, want ErrIperf3Busy", reset, err)
	}
	// A reset once a stream has connected, or another error before, is
	// a failed run, not a busy server: it is not tried again.
	for name, in := range map[string]string{
		"reset during the test": `{"start":{"connected":[{"socket":5}]},"error":"unable to receive control message: Connection reset by peer"}`,
		"timeout before it":     `{"start":{"connected":[]},"error":"unable to receive control message: Connection timed out"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseIperf3([]byte(in)); !errors.Is(err, ErrIperf3) || errors.Is(err, ErrIperf3Busy) {
				t.Errorf("ParseIperf3(%s) = %v, want ErrIperf3 and not busy", in, err)
			}
		})
	}
	t.Run("MB/s", func(t *testing.T) {
		if got := (Iperf3Result{Bytes: 3e9, Seconds: 2}).MBps(); got != 1500 {
			t.Errorf("3e9 bytes in 2s = %v MB/s, want 1500", got)
		}
	})
	for name, in := range map[string]string{
		"not JSON":        `iperf3: error`,
		"no sum_received": `{"start":{},"end":{}}`,
		"zero seconds":    `{"end":{"sum_received":{"bytes":10,"seconds":0}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseIperf3([]byte(in)); err == nil || errors.Is(err, ErrIperf3) {
				t.Errorf("ParseIperf3(%q) = %v, want a parse error", in, err)
			}
		})
	}
}

func TestIperf3Args(t *testing.T) {
	for _, tc := range []struct {
		test Iperf3Test
		d    time.Duration
		want []string
	}{
		{Iperf3Test{}, 2 * time.Second, []string{"-c", "127.0.0.1", "-p", "5201", "-t", "2", "-i", "0", "-J"}},
		// -t 0 would run forever: a quick run still takes one second.
		{Iperf3Test{Reverse: true}, 250 * time.Millisecond, []string{"-c", "127.0.0.1", "-p", "5201", "-t", "1", "-i", "0", "-J", "-R"}},
		{Iperf3Test{Parallel: 8, Reverse: true}, 4 * time.Second, []string{"-c", "127.0.0.1", "-p", "5201", "-t", "4", "-i", "0", "-J", "-P", "8", "-R"}},
		{Iperf3Test{Parallel: 8, Omit: 1}, 2 * time.Second, []string{"-c", "127.0.0.1", "-p", "5201", "-t", "2", "-i", "0", "-J", "-P", "8", "-O", "1"}},
	} {
		got, err := tc.test.Args("127.0.0.1:5201", tc.d)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%+v.Args(%v) = %q, %v; want %q", tc.test, tc.d, got, err, tc.want)
		}
	}
	if _, err := (Iperf3Test{}).Args("127.0.0.1", time.Second); err == nil {
		t.Errorf("Args of an address without a port: no error")
	}
}

// While another client's test runs on Debian's iperf3 server, a client
// gets its busy report; RunIperf3 keeps trying and runs once that test
// is over.
func TestRunIperf3WaitsForABusyServer(t *testing.T) {
	if _, err := exec.LookPath(Iperf3Bin); err != nil {
		t.Skip("iperf3 is not installed (Debian: apt-get install iperf3)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	srv := exec.Command(Iperf3Bin, "-s", "-B", "127.0.0.1", "-p", port)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })

	// The other client: a 5-second test, in the server's running state
	// (where it turns others away) once the client reports its first
	// second; it may first find the server not yet listening.
	var holder *exec.Cmd
	var out *bufio.Scanner
	for try := 0; out == nil; try++ {
		holder = exec.Command(Iperf3Bin, "-c", "127.0.0.1", "-p", port, "-t", "5", "-b", "10M", "--forceflush")
		stdout, err := holder.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), " 0.00-1.00 ") {
				out = sc
				break
			}
		}
		if out == nil {
			holder.Wait()
			if try == 100 {
				t.Fatal("the other iperf3 client never ran")
			}
			<-time.After(50 * time.Millisecond) // the server is not listening yet
		}
	}
	held := make(chan error, 1)
	go func() {
		for out.Scan() {
		}
		held <- holder.Wait()
	}()

	args, err := Iperf3Test{}.Args(addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runIperf3(context.Background(), args, nil, time.Second); !errors.Is(err, ErrIperf3Busy) {
		t.Fatalf("one run while another test runs: %v, want ErrIperf3Busy", err)
	}
	r, err := RunIperf3(context.Background(), addr, Iperf3Test{}, time.Second)
	if err != nil || r.Bytes <= 0 {
		t.Fatalf("RunIperf3 = %+v, %v; want a run once the other test is over", r, err)
	}
	if err := <-held; err != nil {
		t.Errorf("the other client: %v", err)
	}
}
