package measure

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The samples in testdata were captured from Debian's iperf 3.12 on
// loopback with the arguments Iperf3Test.Args gives: -t 1 -i 0 -J, then
// -P 8 -R, then against a port nobody listens on, then while the server
// ran another client's test.
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
