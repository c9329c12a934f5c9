package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/api/server"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/node"
)

// Config is everything a daemon runs with. The caller has merged its
// overrides (the command line's) into Config already; the daemon reads no
// flags and no environment but NOTIFY_SOCKET.
type Config struct {
	// Config is what the daemon runs with: config.toml's settings (the
	// defaults when Ephemeral) with this run's overrides applied. It must be
	// valid (config.Load's result, or one that passed Validate);
	// Network.ListenAddrs may also hold host:port TCP addresses.
	Config config.Config
	// File is config.toml as it was read at start, before the overrides.
	// A reload compares the file with it to name the sections that changed
	// and need a restart. Nil means Config.
	File *config.Config
	// Home holds config.toml, the identity key, the peer cache and the lock
	// (HOME/daemon.lock: one daemon per home). An Ephemeral daemon uses it
	// only for its API socket and lock; with Home "" it makes a throwaway
	// one, removed when Run returns.
	Home string
	// APISocket is the control API's Unix socket; default HOME/api.sock.
	APISocket string
	// ReadyFile, when set, receives the `id --json` document plus the API
	// socket (and the metrics URL) once the daemon is ready; Run removes it
	// when it returns.
	ReadyFile string
	// Ephemeral runs with a throwaway identity and writes nothing to Home
	// but the API socket: runtime edits (access, listen --save) are not
	// saved, there is no peer cache and nothing to reload.
	Ephemeral bool
	// Strict makes Run fail when a config-file tunnel does not start;
	// otherwise it is logged and retried with backoff.
	Strict bool
	// Relay makes the daemon a circuit relay v2 service for the peers in
	// Config.Relay.
	Relay bool
	// AllowPeers and DenyPeers (peer IDs) are added to the node-wide access
	// policy for this run only, never saved to config.toml.
	AllowPeers, DenyPeers []string
	// Pprof also serves Go's profiles beside the metrics, which must then
	// be on a loopback address (Config.Metrics.Listen).
	Pprof bool
	// Logger receives the daemon's logs; default slog.Default().
	Logger *slog.Logger
	// UserAgent is announced to peers through identify.
	UserAgent string
}

// Daemon is a daemon made by New and run by Run.
type Daemon struct {
	cfg         Config
	log         *slog.Logger
	opts        node.Options // all but the metrics registry, which Run adds
	metricsAddr string
	reloads     chan struct{}
	ready       chan struct{}
	sock        string // set before ready is closed
	ran         sync.Once
}

// Supported returns nil where a daemon can run, or why it cannot (on
// Windows), before anything is created.
func Supported() error { return errPlatform }

// New checks cfg and loads (or, when Ephemeral, makes) the identity key.
// It starts nothing and holds nothing: Run does.
func New(cfg Config) (*Daemon, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.File == nil {
		cfg.File = &cfg.Config
	}
	if !cfg.Ephemeral && cfg.Home == "" {
		return nil, errors.New("a daemon needs a home unless it is ephemeral")
	}
	c := cfg.Config
	var (
		sk  crypto.PrivKey
		err error
	)
	if cfg.Ephemeral {
		sk, err = homedir.GenerateKey()
	} else {
		sk, err = homedir.LoadKey(c.KeyPath(cfg.Home))
	}
	if err != nil {
		return nil, err
	}
	opts, err := nodeOptions(cfg, sk)
	if err != nil {
		return nil, err
	}
	metricsAddr, err := config.MetricsAddr(c.Metrics.Listen)
	if err != nil {
		return nil, fmt.Errorf("%w: metrics.listen: %w", config.ErrInvalid, err)
	}
	return &Daemon{
		cfg: cfg, log: cfg.Logger, opts: opts, metricsAddr: metricsAddr,
		reloads: make(chan struct{}, 1), ready: make(chan struct{}),
	}, nil
}

// Reload asks the running daemon to re-read its config file and apply it,
// as SIGHUP does. It returns at once; the outcome is logged (and reported
// to systemd). Reloads asked for before Run is ready wait for it.
func (d *Daemon) Reload() {
	select {
	case d.reloads <- struct{}{}:
	default: // one is pending already
	}
}

// Ready is closed once the daemon serves its API, its config tunnels have
// had their first try and the ready file is written.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// APISocket is the control API's socket; it is known once Ready is closed.
func (d *Daemon) APISocket() string {
	<-d.ready
	return d.sock
}

// Run runs the daemon until ctx ends, then shuts it down: it tells systemd
// STOPPING=1, closes the API and metrics servers, stops accepting and
// gives live streams timeouts.drain to finish, closes the node and removes
// the API socket, the ready file and an ephemeral home. It returns nil
// after a shutdown asked for by ctx, or the error that kept it from
// starting (with everything it started undone). Run may be called once.
func (d *Daemon) Run(ctx context.Context) error {
	err := errors.New("daemon: Run called twice")
	d.ran.Do(func() { err = d.run(ctx) })
	return err
}

func (d *Daemon) run(ctx context.Context) error {
	cfg, log := d.cfg, d.log
	home, sockPath := cfg.Home, cfg.APISocket
	if cfg.Ephemeral && home == "" {
		tmp, err := os.MkdirTemp("", "p2ptun-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		home, sockPath = tmp, filepath.Join(tmp, config.APISocket)
	}
	if sockPath == "" {
		sockPath = filepath.Join(home, config.APISocket)
	}
	if cfg.Ephemeral {
		if err := os.MkdirAll(filepath.Dir(sockPath), 0o700); err != nil {
			return err
		}
	}
	// One daemon per home, even if its API socket was deleted: an
	// ephemeral daemon uses the home only for its socket.
	if !cfg.Ephemeral || filepath.Dir(sockPath) == home {
		lock, err := homedir.LockDaemon(home)
		if err != nil {
			return err
		}
		defer lock.Close()
	}

	apiGID, err := cfg.Config.API.GID()
	if err != nil {
		return err
	}
	opts := d.opts
	var reg *prometheus.Registry
	if d.metricsAddr != "" {
		reg = newMetricsRegistry()
		opts.Metrics = reg
	}
	n, err := node.New(opts)
	if err != nil {
		return err
	}
	shutdown := cfg.Config.Timeouts.Shutdown.Std()
	var ms *metricsServer
	if reg != nil {
		if ms, err = startMetrics(d.metricsAddr, reg, log, cfg.Pprof); err != nil {
			return err
		}
	}
	closeMetrics := func() {
		if ms == nil {
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdown)
		defer cancel()
		if err := ms.Close(sctx); err != nil {
			log.Warn("closing the metrics server", "err", err)
		}
	}
	if err := n.Start(ctx); err != nil {
		closeMetrics()
		return err
	}
	srv := server.New(n, sockPath, log)
	srv.AllowedGID = apiGID
	sd := notifier{log}
	status := func() string {
		id := n.Identity()
		return statusLine(id.ID, len(id.Addresses), len(n.Tunnels()), sockPath)
	}
	cfgPath := filepath.Join(home, config.ConfigFile)
	names := &names{a: cfg.Config.Aliases()}
	srv.Aliases = names.get
	var reload func(context.Context) (api.ReloadReply, error)
	if !cfg.Ephemeral {
		srv.SetPeerName = names.saver(cfgPath)
		apply := reloader(n, *cfg.File, cfgPath, names, log)
		// Reloads from SIGHUP and from `p2ptun reload` both tell systemd.
		reload = func(ctx context.Context) (out api.ReloadReply, err error) {
			err = sd.reload(func() error { out, err = apply(ctx); return err }, status)
			return out, err
		}
		srv.Reload = reload
	}
	if err := srv.Start(ctx); err != nil {
		closeMetrics()
		return errors.Join(err, n.Close())
	}
	started := false // set once ready: a start that fails undoes what srv.Start did
	defer func() {
		closeMetrics()
		sctx, cancel := context.WithTimeout(context.Background(), shutdown)
		defer cancel()
		if err := srv.Close(sctx); err != nil {
			log.Warn("closing the API", "err", err)
		}
		if !started {
			if err := srv.RestoreSocketDir(); err != nil {
				log.Warn("the daemon did not start", "err", err)
			}
		}
		// New connections are refused from here; live ones get
		// timeouts.drain to finish, then Close resets them.
		drain := cfg.Config.Timeouts.Drain.Std()
		dctx, cancelDrain := context.WithTimeout(context.Background(), drain)
		if left := n.Drain(dctx); left > 0 {
			log.Warn("drain time is over; resetting the streams still open", "streams", left, "drain", drain.String())
		}
		cancelDrain()
		if err := n.Close(); err != nil {
			log.Warn("closing the node", "err", err)
		}
	}()

	// Config tunnels start once the API answers, so `p2ptun wait` can
	// watch them come up.
	res, err := n.ApplyTunnels(ctx, cfgPath, cfg.Config)
	if err != nil {
		return err
	}
	for _, f := range res.Failed {
		if cfg.Strict {
			return fmt.Errorf("tunnel %s (%s:%d) did not start (--strict): %w", f.Name, cfgPath, f.Line, f.Err)
		}
	}
	srv.SetReady()

	metricsURL := ""
	if ms != nil {
		metricsURL = ms.URL
	}
	if cfg.ReadyFile != "" {
		if err := writeReady(cfg.ReadyFile, readyDoc{api.IdentityFrom(n.Identity()), sockPath, metricsURL}); err != nil {
			return err
		}
		defer os.Remove(cfg.ReadyFile)
	}
	id := n.Identity()
	attrs := []any{"peer", id.ID, "api", sockPath, "addrs", id.Addresses,
		"tunnels", len(n.Tunnels()), "failed", len(res.Failed)}
	if metricsURL != "" {
		attrs = append(attrs, "metrics", metricsURL)
	}
	log.Info("daemon ready", attrs...)
	sd.ready(status())
	d.sock = sockPath
	started = true
	close(d.ready)

	for {
		select {
		case <-ctx.Done():
			sd.stopping()
			log.Info("shutting down", "timeout", shutdown.String())
			return nil
		case <-d.reloads:
			if reload == nil {
				log.Warn("SIGHUP ignored: an --ephemeral daemon has no config file to reload")
				continue
			}
			if _, err := reload(ctx); err != nil {
				log.Error("reload failed; the running tunnels are unchanged", "err", err)
			}
		}
	}
}

// readyDoc is what the ready file holds: `id --json` plus where the API
// is, and the metrics URL when metrics are on.
type readyDoc struct {
	api.Identity
	API     string
	Metrics string `json:",omitempty"`
}

// writeReady writes the ready document atomically, so a script polling for
// the file never reads half of it.
func writeReady(path string, doc readyDoc) error {
	b, err := json.MarshalIndent(api.NoNulls(doc), "", "  ")
	if err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d-%d", path, os.Getpid(), time.Now().UnixNano())
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing ready file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing ready file: %w", err)
	}
	return nil
}
