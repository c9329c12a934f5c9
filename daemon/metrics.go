package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/p2ptun/p2ptun/node"
)

// newMetricsRegistry returns the daemon's registry with the process-wide
// collectors (Go runtime, process); the node adds its own and go-libp2p's.
func newMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// metricsServer serves a registry on http://ADDR/metrics. Close stops it
// and waits for its goroutine.
type metricsServer struct {
	srv  *http.Server
	done chan struct{}
	// URL is where the metrics are, with the port actually bound.
	URL string
}

// startMetrics binds addr (a host:port from config.MetricsAddr) and serves
// g on /metrics and, with profiles, Go's profiles on /debug/pprof/; those
// need a loopback addr (node.ErrUsage otherwise). A port in use is
// node.ErrAddrInUse.
func startMetrics(addr string, g prometheus.Gatherer, log *slog.Logger, profiles bool) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w: --metrics %s: pick another port, or stop what listens there", node.ErrAddrInUse, addr)
		}
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	if profiles {
		if !loopbackOnly(ln.Addr()) {
			ln.Close()
			return nil, usagef(fmt.Errorf("--pprof serves profiles on a loopback metrics address only, not %s: use e.g. --metrics 127.0.0.1:9464", ln.Addr()))
		}
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	s := &metricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{}),
		URL:  "http://" + ln.Addr().String() + "/metrics",
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	return s, nil
}

// Close stops accepting, lets scrapes in flight finish until ctx ends, and
// waits for the server's goroutine.
func (s *metricsServer) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	<-s.done
	return err
}

// loopbackOnly reports whether a bound address is reachable from this host
// only. Profiles are served only there, and only when asked for: a CPU
// profile costs the daemon CPU, and a heap or goroutine dump shows its
// peers, and any local user can read a loopback port.
func loopbackOnly(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP.IsLoopback()
}
