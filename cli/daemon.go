package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	p2pd "github.com/p2ptun/p2ptun/daemon"
	"github.com/p2ptun/p2ptun/spec"
)

func daemonFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringSliceFlag{Name: "listen-addr", Usage: "swarm listen multiaddr, or host:port for TCP and QUIC on that port (repeatable; replaces the config's)", EnvVars: []string{"P2PTUN_LISTEN_ADDR"}},
		&ucli.StringFlag{Name: "ready-file", Usage: "write the id JSON here once the daemon is ready", EnvVars: []string{"P2PTUN_READY_FILE"}},
		&ucli.BoolFlag{Name: "ephemeral", Usage: "use a throwaway identity and home; write nothing to HOME but the API socket", EnvVars: []string{"P2PTUN_EPHEMERAL"}},
		&ucli.StringFlag{Name: "swarm-key", Usage: "kubo-format swarm.key: join a private network (TCP/WebSocket only); overrides network.swarm_key", EnvVars: []string{"P2PTUN_SWARM_KEY"}},
		&ucli.StringSliceFlag{Name: "allow-peer", Usage: "add a peer (ID or [peers] name) to the node-wide allow list for this run, never saved to config.toml (repeatable)"},
		&ucli.StringSliceFlag{Name: "deny-peer", Usage: "add a peer (ID or [peers] name) to the node-wide deny list for this run, never saved to config.toml (repeatable)"},
		&ucli.StringSliceFlag{Name: "relay", Usage: "circuit relay to reserve a slot on, /ip4/…/tcp/…/p2p/ID or a [peers] name for one (repeatable; replaces network.relays)", EnvVars: []string{"P2PTUN_RELAY"}},
		&ucli.StringFlag{Name: "reachability", Usage: "auto, private (reserve relay slots at once) or public; overrides network.reachability"},
		&ucli.BoolFlag{Name: "no-mdns", Usage: "do not announce this node or look for peers on the LAN (mDNS)", EnvVars: []string{"P2PTUN_NO_MDNS"}},
		&ucli.StringFlag{Name: "dht", Usage: "Kademlia DHT mode: off, client, server or auto; overrides discovery.dht"},
		&ucli.StringSliceFlag{Name: "bootstrap", Usage: "DHT bootstrap peer, /ip4/…/tcp/…/p2p/ID or a [peers] name for one (repeatable; replaces discovery.bootstrap)", EnvVars: []string{"P2PTUN_BOOTSTRAP"}},
		&ucli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics on http://ADDR/metrics (host:port or /ip4/…/tcp/…; \":9464\" is loopback only); overrides metrics.listen", EnvVars: []string{"P2PTUN_METRICS"}},
		&ucli.BoolFlag{Name: "pprof", Usage: "also serve Go's profiles on http://ADDR/debug/pprof/ (--metrics on loopback only; any local user can read them)", EnvVars: []string{"P2PTUN_PPROF"}},
		&ucli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"P2PTUN_LOG_LEVEL"}},
		&ucli.BoolFlag{Name: "strict", Usage: "exit if a config-file tunnel fails to start, instead of logging it and retrying with backoff", EnvVars: []string{"P2PTUN_STRICT"}},
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
			&ucli.StringSliceFlag{Name: "allow", Usage: "peer (ID or [peers] name) allowed to use the relay (repeatable; adds to relay.allow)"},
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

func runDaemon(c *ucli.Context, relay bool) error {
	if _, err := args(c, 0, "none"); err != nil {
		return err
	}
	if err := p2pd.Supported(); err != nil {
		return err // before init writes a key this system cannot guard
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
	cfg, err := daemonConfig(c, relay, log)
	if err != nil {
		return err
	}
	d, err := p2pd.New(cfg)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-hup:
				d.Reload()
			case <-done:
				return
			}
		}
	})
	err = d.Run(c.Context)
	close(done)
	wg.Wait()
	return err
}

// daemonConfig builds the daemon's config: HOME's config.toml (initialising
// HOME first if it has no identity), or the defaults with --ephemeral, with
// the command line's flags merged over it.
func daemonConfig(c *ucli.Context, relay bool, log *slog.Logger) (p2pd.Config, error) {
	dc := p2pd.Config{
		Home: homeDir(c), APISocket: apiPath(c), ReadyFile: c.String("ready-file"),
		Ephemeral: c.Bool("ephemeral"), Strict: c.Bool("strict"), Relay: relay,
		AllowPeers: c.StringSlice("allow-peer"), DenyPeers: c.StringSlice("deny-peer"),
		Pprof: c.Bool("pprof"), Logger: log, UserAgent: UserAgent(),
	}
	cfg := config.Default()
	if dc.Ephemeral {
		if !c.IsSet("home") && !c.IsSet("api") {
			dc.Home, dc.APISocket = "", "" // a throwaway home
		}
	} else {
		if !homedir.IsInitialized(dc.Home) {
			if _, err := homedir.Init(dc.Home); err != nil {
				return dc, err
			}
			log.Info("initialized new home", "home", dc.Home)
		}
		var err error
		if cfg, err = config.Load(filepath.Join(dc.Home, config.ConfigFile)); err != nil {
			return dc, err
		}
		gid, err := cfg.API.GID()
		if err != nil {
			return dc, err
		}
		if err := homedir.Check(dc.Home, gid); err != nil {
			return dc, err
		}
	}
	file := cfg
	dc.File = &file
	if err := mergeFlags(c, &cfg, relay); err != nil {
		return dc, err
	}
	dc.Config = cfg
	return dc, nil
}

// mergeFlags sets what the daemon's flags override in cfg, after checking
// their values. It replaces cfg's slices and pointers rather than writing
// through them, so a copy of cfg made before stays as it was.
func mergeFlags(c *ucli.Context, cfg *config.Config, relay bool) error {
	if c.IsSet("listen-addr") {
		cfg.Network.ListenAddrs = c.StringSlice("listen-addr")
	}
	if c.IsSet("swarm-key") {
		// Relative to the working directory, not to HOME as in the config.
		p := c.String("swarm-key")
		if p != "" {
			var err error
			if p, err = filepath.Abs(p); err != nil {
				return err
			}
		}
		cfg.Network.SwarmKey = p
	}
	if cfg.Network.SwarmKey != "" && !c.IsSet("listen-addr") && slices.Equal(cfg.Network.ListenAddrs, config.DefaultListenAddrs()) {
		// The defaults include QUIC, which cannot carry the key.
		cfg.Network.ListenAddrs = privateDefaults()
	}
	if c.IsSet("dht") {
		cfg.Discovery.DHT = c.String("dht")
		if !slices.Contains([]string{"off", "client", "server", "auto"}, cfg.Discovery.DHT) {
			return usagef(fmt.Errorf("--dht %q: use off, client, server or auto", cfg.Discovery.DHT))
		}
	}
	if c.IsSet("bootstrap") {
		cfg.Discovery.Bootstrap = c.StringSlice("bootstrap")
	}
	if c.Bool("no-mdns") {
		off := false
		cfg.Discovery.MDNS = &off
	}
	if c.IsSet("relay") {
		cfg.Network.Relays = c.StringSlice("relay")
	}
	if c.IsSet("reachability") {
		cfg.Network.Reachability = c.String("reachability")
		if r := cfg.Network.Reachability; r != "auto" && r != "private" && r != "public" {
			return usagef(fmt.Errorf("--reachability %q: use auto, private or public", r))
		}
	}
	if c.IsSet("metrics") {
		cfg.Metrics.Listen = c.String("metrics")
	}
	metricsAddr, err := config.MetricsAddr(cfg.Metrics.Listen) // the config's is valid
	if err != nil {
		return usagef(fmt.Errorf("--metrics: %w", err))
	}
	if c.Bool("pprof") && metricsAddr == "" {
		return usagef(errors.New("--pprof serves profiles on the metrics listener: pass --metrics 127.0.0.1:PORT too"))
	}
	if relay {
		r := &cfg.Relay
		r.Allow = slices.Concat(r.Allow, c.StringSlice("allow"))
		r.AllowAll = r.AllowAll || c.Bool("allow-all")
		if !r.AllowAll && len(r.Allow) == 0 {
			return usagef(fmt.Errorf("the relay would serve no peer: pass --allow PEER (repeatable) or --allow-all, or set [relay] allow"))
		}
	}
	return checkPeerFlags(c, cfg.Aliases())
}

// checkPeerFlags checks the flags that take peers, each of which takes a
// name of [peers] too (resolved by the daemon with the same names): an
// unknown name, or a value that is no peer, is bad input naming its flag.
func checkPeerFlags(c *ucli.Context, a spec.Aliases) error {
	for _, f := range []struct {
		name string
		addr bool // a peer address with its multiaddr, not just a peer
	}{{"allow-peer", false}, {"deny-peer", false}, {"allow", false}, {"relay", true}, {"bootstrap", true}} {
		for _, s := range c.StringSlice(f.name) {
			var err error
			if f.addr {
				_, err = a.PeerAddr(s)
			} else {
				_, err = a.Peer(s)
			}
			if err != nil {
				return usagef(fmt.Errorf("--%s: %s", f.name, spec.Reason(err)))
			}
		}
	}
	return nil
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

// privateDefaults are the default swarm addresses minus those a swarm key
// cannot protect.
func privateDefaults() []string {
	return slices.DeleteFunc(config.DefaultListenAddrs(), func(s string) bool { return strings.Contains(s, "/udp/") })
}
