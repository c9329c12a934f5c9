package soak

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Load runs Workers goroutines, each opening a connection with Dial,
// running one Exchange with Server, closing it, and starting over, until
// Duration has passed or Count connections have started. Connection i (counting from 0, in the order they
// start) has seed FirstSeed+i and the Spec SpecFor gives it.
type Load struct {
	Dial   func(ctx context.Context) (net.Conn, error)
	Server *Server
	// Workers is how many connections are open at once. Default 64.
	Workers int
	// Duration is how long new connections are started; the ones in
	// progress then finish. Zero: no limit (set Count).
	Duration time.Duration
	// Count, if positive, is how many connections to start in all.
	Count uint64
	// MaxSize caps one direction of one connection; default DefaultMaxSize.
	MaxSize int64
	// FirstSeed is the seed of the first connection.
	FirstSeed uint64
	// Idle is how long a read or write may make no progress; default
	// DefaultIdle.
	Idle time.Duration
	// MaxFailures stops the load early after this many failed
	// connections. Default 10.
	MaxFailures int
	// Progress, if set, is called after each connection.
	Progress func(Stats)
}

// Stats counts what a Load did.
type Stats struct {
	Conns     int64 // connections that were verified both ways
	Failed    int64 // connections that were not
	BytesUp   int64 // verified bytes client → server
	BytesDown int64 // verified bytes server → client
	Modes     [numModes]int64
	Errors    []error // the first MaxFailures failures, in the order they happened
	// ServerErrors are the server's failures that no connection accounts
	// for (a header that was missing, malformed, unexpected or repeated).
	ServerErrors []error
	Elapsed      time.Duration
}

// Err is nil if no connection failed, else one error that lists the
// recorded failures.
func (s Stats) Err() error {
	if s.Failed == 0 && len(s.ServerErrors) == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d connections failed, and the server saw %d unattributed failures:\n%w",
		s.Failed, s.Conns+s.Failed, len(s.ServerErrors), errors.Join(append(s.Errors, s.ServerErrors...)...))
}

// ModeCounts describes how many verified connections ran in each mode.
func (s Stats) ModeCounts() string {
	return fmt.Sprintf("%s %d, %s %d, %s %d", ClientFirst, s.Modes[ClientFirst], ServerFirst, s.Modes[ServerFirst], Concurrent, s.Modes[Concurrent])
}

// Run runs the load and returns its counts; failures are in Stats.Errors
// and Stats.ServerErrors (Stats.Err joins them). ctx's end stops the
// load at once (the connections in progress fail).
func (l Load) Run(ctx context.Context) Stats {
	workers := l.Workers
	if workers <= 0 {
		workers = 64
	}
	maxFail := l.MaxFailures
	if maxFail <= 0 {
		maxFail = 10
	}
	var (
		next  atomic.Uint64
		mu    sync.Mutex
		st    Stats
		start = time.Now()
		end   = start.Add(l.Duration)
		wg    sync.WaitGroup
	)
	stopped := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return st.Failed >= int64(maxFail)
	}
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil && (l.Duration == 0 || time.Now().Before(end)) && !stopped() {
				i := next.Add(1) - 1
				if l.Count > 0 && i >= l.Count {
					return
				}
				sp := SpecFor(l.FirstSeed+i, l.MaxSize)
				tr, err := l.One(ctx, sp)
				mu.Lock()
				if err != nil {
					st.Failed++
					if len(st.Errors) < maxFail {
						st.Errors = append(st.Errors, err)
					}
				} else {
					st.Conns++
					st.BytesUp += tr.Up
					st.BytesDown += tr.Down
					st.Modes[sp.Mode]++
				}
				snap := st
				mu.Unlock()
				if l.Progress != nil {
					l.Progress(snap)
				}
			}
		})
	}
	wg.Wait()
	st.Elapsed = time.Since(start)
	st.ServerErrors = l.Server.Failures()
	return st
}

// One runs a single connection with sp: dial, Exchange, close, and the
// server's verdict on the upload, which must hash to what was sent.
func (l Load) One(ctx context.Context, sp Spec) (Transfer, error) {
	tk := l.Server.Expect(sp)
	defer tk.Release()
	c, err := l.Dial(ctx)
	if err != nil {
		return Transfer{}, fmt.Errorf("%s: dial: %w", sp, err)
	}
	tr, err := Exchange(ctx, c, sp, l.Idle)
	if cerr := c.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: close: %w", sp, cerr)
	}
	idle := l.Idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	wctx, cancel := context.WithTimeout(ctx, idle)
	defer cancel()
	if err != nil {
		// The server's view first: when it has seen the connection, what
		// it found wrong is usually the cause of what the client saw.
		if tk.Claimed() {
			if _, serr := tk.Wait(wctx); serr != nil {
				err = fmt.Errorf("%w\n%w", serr, err)
			}
		}
		return tr, err
	}
	sum, err := tk.Wait(wctx)
	if err != nil {
		return tr, err
	}
	if sum != tr.UpSum {
		return tr, fmt.Errorf("%s: upload SHA-256: server received bytes hashing to %x, client sent %x", sp, sum, tr.UpSum)
	}
	return tr, nil
}
