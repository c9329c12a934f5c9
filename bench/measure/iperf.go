package measure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Iperf3Bin is the name of Debian's iperf3, looked up on PATH.
const Iperf3Bin = "iperf3"

// An Iperf3Test is one iperf3 client run: Parallel connections (-P), the
// server sending (-R, Reverse) or receiving, the first Omit seconds not
// counted (-O: slow start on a long link).
type Iperf3Test struct {
	Parallel int
	Reverse  bool
	Omit     int
	// Start starts the client; nil: exec.Cmd.Start. The WAN benchmark
	// starts it in a network namespace.
	Start func(*exec.Cmd) error
}

// Args are the iperf3 client's arguments for t against addr (host:port)
// for d, rounded to whole seconds (iperf3's -t takes an integer, and 0
// means forever) and at least one. -J: the one JSON document that
// ParseIperf3 reads; -i 0: no per-second reports in it.
func (t Iperf3Test) Args(addr string, d time.Duration) ([]string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("iperf3 address %q: %w", addr, err)
	}
	secs := max(1, int(d.Round(time.Second)/time.Second))
	args := []string{"-c", host, "-p", port, "-t", strconv.Itoa(secs), "-i", "0", "-J"}
	if t.Parallel > 1 {
		args = append(args, "-P", strconv.Itoa(t.Parallel))
	}
	if t.Reverse {
		args = append(args, "-R")
	}
	if t.Omit > 0 {
		args = append(args, "-O", strconv.Itoa(t.Omit))
	}
	return args, nil
}

// Iperf3Result is what an iperf3 client run reports: the bytes the
// receiving side counted (the server's for an upload, the client's for
// -R) over its seconds, all connections together.
type Iperf3Result struct {
	Bytes   int64
	Seconds float64
}

// MBps is 10^6 bytes a second received.
func (r Iperf3Result) MBps() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Bytes) / 1e6 / r.Seconds
}

// ErrIperf3 is an error that iperf3 itself reported (its JSON's "error").
var ErrIperf3 = errors.New("iperf3 reported an error")

// ErrIperf3Busy is iperf3's report that its server was still running
// another test (one whose end had not yet reached it through a row);
// it comes with ErrIperf3.
var ErrIperf3Busy = errors.New("the iperf3 server is busy")

// iperf3Busy is how iperf 3.x's server says it is busy (iperf_error.c,
// IESERVERBUSY), which its client puts in its JSON's "error".
const iperf3Busy = "the server is busy"

// iperf3Resets are the errors of a client whose control connection was
// reset before its test began: while it connected (with
// --connect-timeout, the reset is read as the connect's outcome) or
// while it waited for the server's first message (IERECVMESSAGE). With
// no stream connected yet, it is how a server that is not ready for the
// next test answers through a tunnel: a busy server writes its one busy
// byte and closes without reading the client's cookie, so its kernel
// sends a RST, which the row passes on, and a reset stream (yamux's or
// QUIC's) drops the byte still in flight; a server between tests resets
// the connections queued on the listener it closes, or is not listening
// and the row resets the client. Nothing was measured yet, so it is
// tried again like a busy report.
var iperf3Resets = []string{"unable to connect to server: ", "unable to receive control message: "}

// iperf3ResetCause is strerror(ECONNRESET), as iperf3 appends it.
const iperf3ResetCause = "Connection reset by peer"

// ParseIperf3 reads the JSON document of `iperf3 -c … -J` (iperf 3.x):
// end.sum_received. A run that failed has an "error" member instead,
// returned wrapped in ErrIperf3.
func ParseIperf3(b []byte) (Iperf3Result, error) {
	var doc struct {
		Error string `json:"error"`
		Start struct {
			Connected []json.RawMessage `json:"connected"`
		} `json:"start"`
		End struct {
			SumReceived *struct {
				Bytes   int64   `json:"bytes"`
				Seconds float64 `json:"seconds"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return Iperf3Result{}, fmt.Errorf("iperf3 output: %w", err)
	}
	if strings.HasPrefix(doc.Error, iperf3Busy) || resetBeforeTest(doc.Error, len(doc.Start.Connected)) {
		return Iperf3Result{}, fmt.Errorf("%w: %w: %s", ErrIperf3, ErrIperf3Busy, doc.Error)
	}
	if doc.Error != "" {
		return Iperf3Result{}, fmt.Errorf("%w: %s", ErrIperf3, doc.Error)
	}
	s := doc.End.SumReceived
	if s == nil || s.Seconds <= 0 {
		return Iperf3Result{}, errors.New("iperf3 output: no end.sum_received with a duration")
	}
	return Iperf3Result{Bytes: s.Bytes, Seconds: s.Seconds}, nil
}

// resetBeforeTest reports whether an iperf3 client's error is a reset of
// its control connection before any of its streams connected (see
// iperf3Resets).
func resetBeforeTest(msg string, connected int) bool {
	if connected > 0 || !strings.HasSuffix(msg, iperf3ResetCause) {
		return false
	}
	return slices.ContainsFunc(iperf3Resets, func(p string) bool { return strings.HasPrefix(msg, p) })
}

// RunIperf3 runs the iperf3 client for t against addr for d and parses
// what it reports. While the server says it is busy with the test before
// (whose end may still be crossing a row), or resets the client before
// its test starts (how the busy report arrives through a tunnel, see
// iperf3Resets), it tries again, for up to iperf3BusyFor.
func RunIperf3(ctx context.Context, addr string, t Iperf3Test, d time.Duration) (Iperf3Result, error) {
	args, err := t.Args(addr, d)
	if err != nil {
		return Iperf3Result{}, err
	}
	giveUp := time.Now().Add(iperf3BusyFor)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		res, err := runIperf3(ctx, args, t.Start, d+time.Duration(t.Omit)*time.Second)
		if !errors.Is(err, ErrIperf3Busy) || time.Now().After(giveUp) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, err
		case <-tick.C:
		}
	}
}

// iperf3BusyFor is how long RunIperf3 tries again while the server is
// busy.
const iperf3BusyFor = 30 * time.Second

// runIperf3 runs the iperf3 client once (started with start, nil:
// cmd.Start), for at most d plus a minute.
func runIperf3(ctx context.Context, args []string, start func(*exec.Cmd) error, d time.Duration) (Iperf3Result, error) {
	ctx, cancel := context.WithTimeout(ctx, d+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Iperf3Bin, append(args, "--connect-timeout", "10000")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if start == nil {
		start = (*exec.Cmd).Start
	}
	runErr := start(cmd)
	if runErr == nil {
		runErr = cmd.Wait()
	}
	res, err := ParseIperf3(stdout.Bytes())
	if err != nil {
		return res, errors.Join(err, exitErr(runErr, stderr.String()))
	}
	return res, nil
}

// exitErr adds iperf3's stderr to its exit status, if it failed.
func exitErr(err error, stderr string) error {
	if err == nil {
		return nil
	}
	if s := strings.TrimSpace(stderr); s != "" {
		return fmt.Errorf("iperf3: %w: %s", err, s)
	}
	return fmt.Errorf("iperf3: %w", err)
}
