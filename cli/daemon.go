package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/node"
)

func daemonFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringSliceFlag{Name: "listen-addr", Usage: "swarm listen multiaddr, or host:port for TCP (repeatable; replaces the config's)", EnvVars: []string{"P2PTUN_LISTEN_ADDR"}},
		&ucli.StringFlag{Name: "ready-file", Usage: "write the id JSON here once the daemon is ready", EnvVars: []string{"P2PTUN_READY_FILE"}},
		&ucli.BoolFlag{Name: "ephemeral", Usage: "use a throwaway identity and home; write nothing to HOME but the API socket", EnvVars: []string{"P2PTUN_EPHEMERAL"}},
		&ucli.StringFlag{Name: "swarm-key", Usage: "kubo-format swarm.key: join a private network (TCP/WebSocket only); overrides network.swarm_key", EnvVars: []string{"P2PTUN_SWARM_KEY"}},
		&ucli.StringSliceFlag{Name: "allow-peer", Usage: "add a peer to the node-wide allow list for this run, never saved to config.toml (repeatable)"},
		&ucli.StringSliceFlag{Name: "deny-peer", Usage: "add a peer to the node-wide deny list for this run, never saved to config.toml (repeatable)"},
		&ucli.StringSliceFlag{Name: "relay", Usage: "circuit relay to reserve a slot on, /ip4/…/tcp/…/p2p/ID (repeatable; replaces network.relays)", EnvVars: []string{"P2PTUN_RELAY"}},
		&ucli.StringFlag{Name: "reachability", Usage: "auto, private (reserve relay slots at once) or public; overrides network.reachability"},
		&ucli.BoolFlag{Name: "no-mdns", Usage: "do not announce this node or look for peers on the LAN (mDNS)", EnvVars: []string{"P2PTUN_NO_MDNS"}},
		&ucli.StringFlag{Name: "dht", Usage: "Kademlia DHT mode: off, client, server or auto; overrides discovery.dht"},
		&ucli.StringSliceFlag{Name: "bootstrap", Usage: "DHT bootstrap peer, /ip4/…/tcp/…/p2p/ID (repeatable; replaces discovery.bootstrap)", EnvVars: []string{"P2PTUN_BOOTSTRAP"}},
		&ucli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics on http://ADDR/metrics (host:port or /ip4/…/tcp/…; \":9464\" is loopback only); overrides metrics.listen", EnvVars: []string{"P2PTUN_METRICS"}},
		&ucli.BoolFlag{Name: "pprof", Usage: "also serve Go's profiles on http://ADDR/debug/pprof/ (--metrics on loopback only; any local user can read them)", EnvVars: []string{"P2PTUN_PPROF"}},
		&ucli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"P2PTUN_LOG_LEVEL"}},
		&ucli.BoolFlag{Name: "strict", Usage: "exit if a config-file tunnel fails to start (default: log it and retry with backoff)", EnvVars: []string{"P2PTUN_STRICT"}},
		&ucli.StringFlag{Name: "log-format", Value: "text", Usage: "text (key=value) or json (one object a line, for journald and log shippers)", EnvVars: []string{"P2PTUN_LOG_FORMAT"}},
	}
}

func relayCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "relay",
		Usage: "run a daemon that is also a circuit relay for the peers it allows",
		Description: "Like `daemon`, plus a circuit relay v2 service: the peers named with --allow (and in\n" +
			"[relay] allow) may reserve a slot and reach each other through this node, with no\n" +
			"time or data cap unless [relay] sets one. Run it where both peers can reach it.",
		Flags: append(daemonFlags(),
			&ucli.StringSliceFlag{Name: "allow", Usage: "peer allowed to use the relay (repeatable; adds to relay.allow)"},
			&ucli.BoolFlag{Name: "allow-all", Usage: "relay for any peer (a public relay)"},
		),
		Action: func(c *ucli.Context) error { return runDaemon(c, true) },
	}
}

func daemonCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "daemon",
		Usage: "run the node and its control API until SIGINT or SIGTERM",
		Description: "Runs `init` first if HOME has no identity. --listen-addr replaces the config's\n" +
			"swarm addresses. Once the API answers, writes the `id --json` document (plus the\n" +
			"API socket path) to --ready-file and, under systemd (NOTIFY_SOCKET), sends READY=1.\n" +
			"On SIGINT/SIGTERM it sends STOPPING=1, stops accepting, closes listeners, ends\n" +
			"streams, removes the socket and the ready file, and exits 0.\n" +
			"SIGHUP never stops it.",
		Flags:  daemonFlags(),
		Action: func(c *ucli.Context) error { return runDaemon(c, false) },
	}
}

// readyDoc is what --ready-file holds: `id --json` plus where the API is,
// and the metrics URL when --metrics is on.
type readyDoc struct {
	node.Identity
	API     string
	Metrics string `json:",omitempty"`
}

func runDaemon(c *ucli.Context, relay bool) error {
	if _, err := args(c, 0, "none"); err != nil {
		return err
	}
	// SIGHUP asks the daemon to reload (systemctl reload, a closed
	// terminal) and must never kill it. Only the daemon catches it: any
	// other command ends on SIGHUP, as ssh expects of a ProxyCommand
	// (p2ptun pipe) that it hangs up on.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log, err := daemonLogger(c)
	if err != nil {
		return err
	}

	home := homeDir(c)
	sockPath := apiPath(c)
	var (
		cfg = config.Default()
		sk  crypto.PrivKey
	)
	if c.Bool("ephemeral") {
		if !c.IsSet("home") && !c.IsSet("api") {
			tmp, err := os.MkdirTemp("", "p2ptun-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			home, sockPath = tmp, filepath.Join(tmp, config.APISocket)
		} else if err := os.MkdirAll(filepath.Dir(sockPath), 0o700); err != nil {
			return err
		}
		if sk, err = config.GenerateKey(); err != nil {
			return err
		}
	} else {
		if !config.IsInitialized(home) {
			if _, err := config.Init(home); err != nil {
				return err
			}
			log.Info("initialized new home", "home", home)
		}
		if err := config.CheckHome(home); err != nil {
			return err
		}
		if cfg, err = config.Load(filepath.Join(home, config.ConfigFile)); err != nil {
			return err
		}
		if sk, err = config.LoadKey(cfg.KeyPath(home)); err != nil {
			return err
		}
	}
	// One daemon per home, even if its API socket was deleted: an
	// --ephemeral daemon uses the home only for its socket.
	if !c.Bool("ephemeral") || filepath.Dir(sockPath) == home {
		lock, err := config.LockHome(home)
		if err != nil {
			return err
		}
		defer lock.Close()
	}

	addrStrs := cfg.Network.ListenAddrs
	if c.IsSet("listen-addr") {
		addrStrs = c.StringSlice("listen-addr")
	}
	addrs := make([]ma.Multiaddr, 0, len(addrStrs))
	for _, s := range addrStrs {
		m, err := swarmAddr(s)
		if err != nil {
			return err
		}
		addrs = append(addrs, m)
	}

	// The config's lists are what runtime `access` edits change and save;
	// --allow-peer and --deny-peer hold for this run and are never saved.
	var allow, deny, runAllow, runDeny []peer.ID
	for _, l := range []struct {
		dst *[]peer.ID
		ids []string
	}{{&allow, cfg.Access.Allow}, {&deny, cfg.Access.Deny}, {&runAllow, c.StringSlice("allow-peer")}, {&runDeny, c.StringSlice("deny-peer")}} {
		if *l.dst, err = peerIDs(l.ids); err != nil {
			return err
		}
	}
	var (
		saveAccess  func(config.Access) error
		saveListen  func(config.ListenTunnel) error
		saveForward func(config.ForwardTunnel) error
		cfgPath     = filepath.Join(home, config.ConfigFile)
	)
	if !c.Bool("ephemeral") {
		saveAccess = func(a config.Access) error { return config.SaveAccess(cfgPath, a) }
		saveListen = func(t config.ListenTunnel) error { return config.AppendListen(cfgPath, t) }
		saveForward = func(t config.ForwardTunnel) error { return config.AppendForward(cfgPath, t) }
	}
	keyPath := cfg.SwarmKeyPath(home)
	if c.IsSet("swarm-key") {
		keyPath = c.String("swarm-key")
	}
	var psk pnet.PSK
	if keyPath != "" {
		if psk, err = config.LoadSwarmKey(keyPath); err != nil {
			return err
		}
		if !c.IsSet("listen-addr") && slices.Equal(addrStrs, config.DefaultListenAddrs()) {
			// The defaults include QUIC, which cannot carry the key.
			addrs = privateDefaults()
		}
	}

	dhtMode := cfg.Discovery.DHT
	if c.IsSet("dht") {
		dhtMode = c.String("dht")
		if !slices.Contains([]string{"off", "client", "server", "auto"}, dhtMode) {
			return usagef(fmt.Errorf("--dht %q: use off, client, server or auto", dhtMode))
		}
	}
	bootStrs := cfg.Discovery.Bootstrap
	if c.IsSet("bootstrap") {
		bootStrs = c.StringSlice("bootstrap")
	}
	bootstrap, err := peerInfos(bootStrs)
	if err != nil {
		return err
	}
	peerCache := ""
	if !c.Bool("ephemeral") {
		peerCache = filepath.Join(home, config.PeersFile)
	}
	relayStrs := cfg.Network.Relays
	if c.IsSet("relay") {
		relayStrs = c.StringSlice("relay")
	}
	relays, err := peerInfos(relayStrs)
	if err != nil {
		return err
	}
	reach := cfg.Network.Reachability
	if c.IsSet("reachability") {
		reach = c.String("reachability")
		if reach != "auto" && reach != "private" && reach != "public" {
			return usagef(fmt.Errorf("--reachability %q: use auto, private or public", reach))
		}
	}
	metricsListen := cfg.Metrics.Listen // validated with the config
	if c.IsSet("metrics") {
		metricsListen = c.String("metrics")
	}
	metricsAddr, err := config.MetricsAddr(metricsListen)
	if err != nil {
		return usagef(fmt.Errorf("--metrics: %w", err))
	}
	if c.Bool("pprof") && metricsAddr == "" {
		return usagef(errors.New("--pprof serves profiles on the metrics listener: pass --metrics 127.0.0.1:PORT too"))
	}
	var reg *prometheus.Registry
	if metricsAddr != "" {
		reg = newMetricsRegistry()
	}
	var relayCfg *config.Relay
	if relay {
		r := cfg.Relay
		r.Allow = append(r.Allow, c.StringSlice("allow")...)
		r.AllowAll = r.AllowAll || c.Bool("allow-all")
		if !r.AllowAll && len(r.Allow) == 0 {
			return usagef(fmt.Errorf("the relay would serve no peer: pass --allow PEER (repeatable) or --allow-all, or set [relay] allow"))
		}
		for _, p := range r.Allow {
			if _, err := node.ParsePeer(p); err != nil {
				return err
			}
		}
		relayCfg = &r
	}

	n, err := node.New(node.Options{
		Key: sk, ListenAddrs: addrs, Timeouts: cfg.Timeouts, Limits: cfg.Limits,
		Allow: allow, Deny: deny, RunAllow: runAllow, RunDeny: runDeny, SaveAccess: saveAccess, SwarmKey: psk,
		SaveListen: saveListen, SaveForward: saveForward,
		Relay: relayCfg, Relays: relays, Reachability: reach,
		AutoRelay:    config.On(cfg.Network.AutoRelay, true) && relayCfg == nil,
		HolePunching: config.On(cfg.Network.HolePunching, true), PortMapping: cfg.Network.PortMapping,
		NATService: cfg.Network.AutoNATService, PeerCache: peerCache,
		DHT: dhtMode, Bootstrap: bootstrap, DHTPrefix: cfg.Discovery.ProtocolPrefix,
		MDNS:      config.On(cfg.Discovery.MDNS, true) && !c.Bool("no-mdns"),
		UserAgent: UserAgent(), Logger: log, Metrics: registerer(reg),
	})
	if err != nil {
		return err
	}
	shutdown := cfg.Timeouts.Shutdown.Std()
	var ms *metricsServer
	if reg != nil {
		if ms, err = startMetrics(metricsAddr, reg, log, c.Bool("pprof")); err != nil {
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
	if err := n.Start(c.Context); err != nil {
		closeMetrics()
		return err
	}
	srv := api.NewServer(n, sockPath, log)
	sd := notifier{log}
	status := func() string {
		id := n.Identity()
		return fmt.Sprintf("serving peer %s on %d addresses with %d config tunnels; API %s", id.ID, len(id.Addresses), len(n.Tunnels()), sockPath)
	}
	var reload func(context.Context) (api.ReloadReply, error)
	if !c.Bool("ephemeral") {
		apply := reloader(n, cfg, cfgPath, log)
		// Reloads from SIGHUP and from `p2ptun reload` both tell systemd.
		reload = func(ctx context.Context) (out api.ReloadReply, err error) {
			err = sd.reload(func() error { out, err = apply(ctx); return err }, status)
			return out, err
		}
		srv.Reload = reload
	}
	if err := srv.Start(c.Context); err != nil {
		closeMetrics()
		return errors.Join(err, n.Close())
	}
	defer func() {
		closeMetrics()
		sctx, cancel := context.WithTimeout(context.Background(), shutdown)
		defer cancel()
		if err := srv.Close(sctx); err != nil {
			log.Warn("closing the API", "err", err)
		}
		// New connections are refused from here; live ones get
		// timeouts.drain to finish, then Close resets them.
		dctx, cancelDrain := context.WithTimeout(context.Background(), cfg.Timeouts.Drain.Std())
		if left := n.Drain(dctx); left > 0 {
			log.Warn("drain time is over; resetting the streams still open", "streams", left, "drain", cfg.Timeouts.Drain.Std().String())
		}
		cancelDrain()
		if err := n.Close(); err != nil {
			log.Warn("closing the node", "err", err)
		}
	}()

	// Config tunnels start once the API answers, so `p2ptun wait` can
	// watch them come up.
	res, err := n.ApplyTunnels(c.Context, cfgPath, cfg)
	if err != nil {
		return err
	}
	for _, f := range res.Failed {
		if c.Bool("strict") {
			return fmt.Errorf("tunnel %s (%s:%d) did not start (--strict): %w", f.Name, cfgPath, f.Line, f.Err)
		}
	}
	srv.SetReady()

	metricsURL := ""
	if ms != nil {
		metricsURL = ms.URL
	}

	ready := c.String("ready-file")
	if ready != "" {
		if err := writeReady(ready, readyDoc{n.Identity(), sockPath, metricsURL}); err != nil {
			return err
		}
		defer os.Remove(ready)
	}
	id := n.Identity()
	attrs := []any{"peer", id.ID, "api", sockPath, "addrs", strings.Join(id.Addresses, " "),
		"tunnels", len(n.Tunnels()), "failed", len(res.Failed)}
	if metricsURL != "" {
		attrs = append(attrs, "metrics", metricsURL)
	}
	log.Info("daemon ready", attrs...)
	sd.ready(status())

	for {
		select {
		case <-c.Context.Done():
			sd.stopping()
			log.Info("shutting down", "timeout", shutdown.String())
			return nil
		case <-hup:
			if reload == nil {
				log.Warn("SIGHUP ignored: an --ephemeral daemon has no config file to reload")
				continue
			}
			if _, err := reload(c.Context); err != nil {
				log.Error("reload failed; the running tunnels are unchanged", "err", err)
			}
		}
	}
}

// reloader returns the daemon's reload: re-read the config file, and apply
// its tunnels and access lists if it is valid (the node adds the run-only
// --allow-peer/--deny-peer peers to them); report settings that need a
// restart. Reloads are serialised by the node.
func reloader(n *node.Node, boot config.Config, cfgPath string, log *slog.Logger) func(context.Context) (api.ReloadReply, error) {
	return func(ctx context.Context) (api.ReloadReply, error) {
		// The file must be there: a missing one would mean the defaults,
		// an open access policy and no tunnels.
		next, err := config.LoadFile(cfgPath)
		if err == nil {
			err = node.CheckTunnels(cfgPath, next)
		}
		var allow, deny []peer.ID
		if err == nil {
			allow, err = peerIDs(next.Access.Allow)
		}
		if err == nil {
			deny, err = peerIDs(next.Access.Deny)
		}
		if err != nil {
			return api.ReloadReply{}, fmt.Errorf("%w (nothing was changed)", err)
		}
		n.SetAccess(allow, deny)
		res, err := n.ApplyTunnels(ctx, cfgPath, next)
		if err != nil {
			return api.ReloadReply{}, err
		}
		out := api.ReloadReply{ApplyResult: res, NeedsRestart: needsRestart(boot, next)}
		n.Reloaded(res, out.NeedsRestart)
		log.Info("config reloaded", "added", len(res.Added), "removed", len(res.Removed),
			"unchanged", len(res.Unchanged), "restarted", len(res.Restarted), "failed", len(res.Failed),
			"needs_restart", strings.Join(out.NeedsRestart, ","))
		return out, nil
	}
}

// needsRestart names the sections that differ between the config the
// daemon started with and next, other than those a reload applies.
func needsRestart(boot, next config.Config) []string {
	var out []string
	for _, s := range []struct {
		name string
		a, b any
	}{
		{"identity", boot.Identity, next.Identity},
		{"network", boot.Network, next.Network},
		{"limits", boot.Limits, next.Limits},
		{"relay", boot.Relay, next.Relay},
		{"discovery", boot.Discovery, next.Discovery},
		{"timeouts", boot.Timeouts, next.Timeouts},
		{"metrics", boot.Metrics, next.Metrics},
	} {
		if !reflect.DeepEqual(s.a, s.b) {
			out = append(out, s.name)
		}
	}
	return out
}

// daemonLogger builds the daemon's logger from --log-level and --log-format.
func daemonLogger(c *ucli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usagef(fmt.Errorf("--log-level %q: use debug, info, warn or error", c.String("log-level")))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f := c.String("log-format"); f {
	case "text":
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	default:
		return nil, usagef(fmt.Errorf("--log-format %q: use text or json", f))
	}
}

// peerIDs parses the peer IDs of an access list or of --allow-peer and
// --deny-peer.
func peerIDs(ss []string) ([]peer.ID, error) {
	var out []peer.ID
	for _, s := range ss {
		id, err := node.ParsePeer(s)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// peerInfos parses peer multiaddrs (relays, bootstrap peers), grouping
// addresses by peer; each needs an address.
func peerInfos(ss []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range ss {
		pi, err := node.ParsePeerAddr(s)
		if err != nil {
			return nil, err
		}
		if len(pi.Addrs) == 0 {
			return nil, usagef(fmt.Errorf("%q needs an address: use /ip4/HOST/tcp/PORT/p2p/ID", s))
		}
		merged := false
		for i := range out {
			if out[i].ID == pi.ID {
				out[i].Addrs = append(out[i].Addrs, pi.Addrs...)
				merged = true
			}
		}
		if !merged {
			out = append(out, pi)
		}
	}
	return out, nil
}

// swarmAddr parses a swarm listen address: a multiaddr the swarm can
// listen on, or host:port for TCP.
func swarmAddr(s string) (ma.Multiaddr, error) {
	if !strings.HasPrefix(s, "/") {
		return node.ParseAddr(s)
	}
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, usagef(fmt.Errorf("listen address %q is not a multiaddr (%v); use e.g. /ip4/0.0.0.0/tcp/%d", s, err, config.DefaultPort))
	}
	if err := config.CheckSwarmAddr(m); err != nil {
		return nil, usagef(fmt.Errorf("--listen-addr: %w", err))
	}
	return m, nil
}

// privateDefaults are the default swarm addresses minus those a swarm key
// cannot protect.
func privateDefaults() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, s := range config.DefaultListenAddrs() {
		if m := ma.StringCast(s); !strings.Contains(s, "/udp/") {
			out = append(out, m)
		}
	}
	return out
}

// writeReady writes the ready document atomically, so a script polling for
// the file never reads half of it.
func writeReady(path string, doc readyDoc) error {
	b, err := json.MarshalIndent(doc, "", "  ")
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

// registerer is reg as a prometheus.Registerer, nil (metrics off) when reg
// is nil: a nil *Registry in the interface would not compare equal to nil.
func registerer(reg *prometheus.Registry) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return reg
}
