package measure

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// dial connects to addr within timeout.
func dial(addr string, timeout time.Duration) (*net.TCPConn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// EchoOnce makes one full echo exchange: connect, send the echo byte,
// read it back, half-close, read the target's EOF, close.
func EchoOnce(addr string, timeout time.Duration) error {
	c, err := dial(addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if err := echoByte(c, modeEcho); err != nil {
		return err
	}
	return closeClean(c)
}

// echoByte writes b and reads one byte back.
func echoByte(c net.Conn, b byte) error {
	if _, err := c.Write([]byte{b}); err != nil {
		return err
	}
	var got [1]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return err
	}
	if got[0] != b {
		return fmt.Errorf("echo returned %q, want %q", got[0], b)
	}
	return nil
}

// closeClean half-closes c and waits for the other side's EOF.
func closeClean(c *net.TCPConn) error {
	if err := c.CloseWrite(); err != nil {
		return err
	}
	var b [1]byte
	if n, err := c.Read(b[:]); n != 0 || err != io.EOF {
		return fmt.Errorf("after half-close: read %d bytes, %v; want EOF", n, err)
	}
	return nil
}

// Transfer is the outcome of one bulk measurement.
type Transfer struct {
	Bytes   int64
	Elapsed time.Duration
}

func (t Transfer) MBps() float64 { return float64(t.Bytes) / 1e6 / t.Elapsed.Seconds() }

var zeros = make([]byte, Chunk)

// Upload sends for d on n connections at once, then half-closes each and
// waits for the target's byte count. The time runs until the last count
// arrives, so that bytes still in flight through the tunnel are paid for.
func Upload(addr string, n int, d time.Duration) (Transfer, error) {
	conns, err := dialAll(addr, n)
	if err != nil {
		return Transfer{}, err
	}
	var (
		total  atomic.Int64
		lastMu sync.Mutex
		last   time.Time
	)
	start := time.Now()
	end := start.Add(d)
	err = eachConn(conns, func(c *net.TCPConn) error {
		if _, err := c.Write([]byte{modeUpload}); err != nil {
			return err
		}
		for time.Now().Before(end) {
			if _, err := c.Write(zeros); err != nil {
				return err
			}
		}
		if err := c.CloseWrite(); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(time.Minute))
		var cnt [8]byte
		if _, err := io.ReadFull(c, cnt[:]); err != nil {
			return fmt.Errorf("reading the target's count: %w", err)
		}
		now := time.Now()
		total.Add(int64(binary.BigEndian.Uint64(cnt[:])))
		lastMu.Lock()
		if now.After(last) {
			last = now
		}
		lastMu.Unlock()
		return nil
	})
	return Transfer{total.Load(), last.Sub(start)}, err
}

// Download asks the target to send on n connections at once and counts
// what arrives within d.
func Download(addr string, n int, d time.Duration) (Transfer, error) {
	conns, err := dialAll(addr, n)
	if err != nil {
		return Transfer{}, err
	}
	var total atomic.Int64
	start := time.Now()
	end := start.Add(d)
	err = eachConn(conns, func(c *net.TCPConn) error {
		if _, err := c.Write([]byte{modeDownload}); err != nil {
			return err
		}
		c.SetReadDeadline(end)
		buf := make([]byte, Chunk)
		for {
			m, err := c.Read(buf)
			total.Add(int64(m))
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	return Transfer{total.Load(), time.Since(start)}, err
}

// dialAll opens n connections to addr, or none.
func dialAll(addr string, n int) ([]*net.TCPConn, error) {
	var conns []*net.TCPConn
	for range n {
		c, err := dial(addr, 10*time.Second)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// eachConn runs f on every connection at once, closes them all, and
// returns the first error.
func eachConn(conns []*net.TCPConn, f func(*net.TCPConn) error) error {
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			errs[i] = f(c)
			c.Close()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ConnRate is the outcome of one new-connections measurement.
type ConnRate struct {
	Done   int
	Errors int
	Rate   float64 // completed connections per second
	TTFB   []time.Duration
}

// exchange is one new connection: open it, send the echo byte, read it
// back, half-close, read EOF and close. It returns the time to first
// byte, from before the dial to the echoed byte.
func exchange(addr string) (time.Duration, error) {
	t0 := time.Now()
	c, err := dial(addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(t0.Add(10 * time.Second))
	if err := echoByte(c, modeEcho); err != nil {
		return 0, err
	}
	ttfb := time.Since(t0)
	return ttfb, closeClean(c)
}

// rates collects exchanges' outcomes from many goroutines.
type rates struct {
	mu    sync.Mutex
	out   ConnRate
	start time.Time
}

func (r *rates) add(ttfb time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.out.Errors++
		return
	}
	r.out.TTFB = append(r.out.TTFB, ttfb)
}

func (r *rates) done() ConnRate {
	r.out.Done = len(r.out.TTFB)
	r.out.Rate = float64(r.out.Done) / time.Since(r.start).Seconds()
	slices.Sort(r.out.TTFB)
	return r.out
}

// NewConns runs clients loops of exchanges for d.
func NewConns(addr string, clients int, d time.Duration) ConnRate {
	r := &rates{start: time.Now()}
	end := r.start.Add(d)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for time.Now().Before(end) {
				r.add(exchange(addr))
			}
		})
	}
	wg.Wait()
	return r.done()
}

// PacedConns starts exchanges at a fixed rate for d, each in a goroutine
// of its own (open loop: a slow one does not delay the next). Unlike
// NewConns' clients, which open as fast as the row answers, this measures
// the time to first byte at a load the machine can carry, not the
// queueing of a saturated one.
func PacedConns(addr string, rate int, d time.Duration) ConnRate {
	r := &rates{start: time.Now()}
	var wg sync.WaitGroup
	for i := range int(d.Seconds() * float64(rate)) {
		// Each connection at its own time, so that a late one does not
		// bunch the rest.
		time.Sleep(time.Until(r.start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		wg.Go(func() { r.add(exchange(addr)) })
	}
	wg.Wait()
	return r.done()
}

// Percentile of sorted durations, in milliseconds.
func Percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(p*float64(len(sorted))), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

// Held is a set of connections opened and kept open.
type Held struct {
	conns  []*net.TCPConn
	Failed int
	Took   time.Duration // to open them all
	// Stopped says why opening stopped before n.
	Stopped string
}

// maxHeldFailures ends an attempt to hold n connections early: past it,
// the row cannot hold them (a limit was hit), and each failure may cost a
// stream-open timeout.
const maxHeldFailures = 50

// Hold opens n connections, at most conc at a time, each proven by an
// echo, and keeps them open.
func Hold(addr string, n, conc int) *Held {
	var (
		mu  sync.Mutex
		h   = &Held{}
		wg  sync.WaitGroup
		sem = make(chan struct{}, conc)
	)
	start := time.Now()
	defer func() { h.Took = time.Since(start) }()
	for range n {
		mu.Lock()
		failed := h.Failed
		mu.Unlock()
		if failed >= maxHeldFailures {
			h.Stopped = fmt.Sprintf("stopped opening after %d failures", failed)
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := dial(addr, 15*time.Second)
			if err == nil {
				c.SetDeadline(time.Now().Add(15 * time.Second))
				if err = echoByte(c, modeEcho); err != nil {
					c.Close()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				h.Failed++
				return
			}
			c.SetDeadline(time.Time{})
			h.conns = append(h.conns, c)
		})
	}
	wg.Wait()
	return h
}

// EchoAll sends one more byte on every held connection and reads it back:
// the connections are not only open but carry data. It returns how many
// answered.
func (h *Held) EchoAll(conc int) int {
	var (
		ok  atomic.Int64
		wg  sync.WaitGroup
		sem = make(chan struct{}, conc)
	)
	for _, c := range h.conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.SetDeadline(time.Now().Add(15 * time.Second))
			if echoByte(c, 'x') == nil {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return int(ok.Load())
}

// Opened is how many connections were opened and echoed.
func (h *Held) Opened() int { return len(h.conns) }

// Close closes every held connection.
func (h *Held) Close() {
	for _, c := range h.conns {
		c.Close()
	}
}
