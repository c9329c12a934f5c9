//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/p2ptun/p2ptun/bench/procs"
	"github.com/p2ptun/p2ptun/bench/wan/link"
)

// kuboPort is kubo's swarm port in B.
const kuboPort = 4001

// kuboConfig is what the benchmark sets in each kubo repo's config over
// `ipfs init --profile=test`: nothing that reaches beyond the link, the
// stream mounting of `ipfs p2p`, swarm over TCP (addresses set per node).
var kuboConfig = map[string]any{
	"Bootstrap":                         []any{},
	"Peering.Peers":                     []any{},
	"Addresses.API":                     "/ip4/127.0.0.1/tcp/0",
	"Addresses.Gateway":                 "/ip4/127.0.0.1/tcp/0",
	"Discovery.MDNS.Enabled":            false,
	"Routing.Type":                      "none",
	"AutoConf.Enabled":                  false,
	"AutoTLS.Enabled":                   false,
	"Provide.Enabled":                   false,
	"HTTPRetrieval.Enabled":             false,
	"AutoNAT.ServiceMode":               "disabled",
	"Swarm.DisableNatPortMap":           true,
	"Swarm.RelayClient.Enabled":         false,
	"Swarm.RelayService.Enabled":        false,
	"Swarm.EnableHolePunching":          false,
	"Plugins.Plugins":                   map[string]any{"telemetry": map[string]any{"Disabled": true}},
	"Experimental.Libp2pStreamMounting": true,
}

// A kubo is one kubo node: its repo and, while it runs, its daemon.
type kubo struct {
	bin, repo string
	e         link.End
	d         *procs.Running
}

func (k *kubo) env() []string {
	return append(os.Environ(), "IPFS_PATH="+k.repo, "IPFS_TELEMETRY=off")
}

// run runs an ipfs command in k's namespace (its API is on loopback there).
func (k *kubo) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Env = k.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := k.e.Start(cmd); err != nil {
		return "", err
	}
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("ipfs %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// initRepo makes k's repo unless it exists, with swarm address swarm.
func (k *kubo) initRepo(ctx context.Context, swarm string) error {
	file := filepath.Join(k.repo, "config")
	if _, err := os.Stat(file); err == nil {
		return nil
	}
	if _, err := k.run(ctx, "init", "--profile=test"); err != nil {
		return err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	set := func(key string, v any) {
		m := cfg
		parts := strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	for key, v := range kuboConfig {
		set(key, v)
	}
	set("Addresses.Swarm", []any{swarm})
	if b, err = json.MarshalIndent(cfg, "", "  "); err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o600)
}

// start runs k's daemon and returns once its API answers.
func (k *kubo) start(ctx context.Context) error {
	logf, err := os.Create(filepath.Join(k.repo, "daemon.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	os.Remove(filepath.Join(k.repo, "api"))
	cmd := exec.Command(k.bin, "daemon")
	cmd.Env = k.env()
	cmd.Stdout, cmd.Stderr = logf, logf
	if k.d, err = procs.Start(cmd, k.e.Start); err != nil {
		return err
	}
	err = procs.Poll(ctx, time.Minute, func() error {
		if k.d.Exited() {
			return procs.ErrStop
		}
		// The daemon writes its API's address once it serves it; before
		// that a command would open the repo itself, taking the lock the
		// daemon needs.
		if _, err := os.Stat(filepath.Join(k.repo, "api")); err != nil {
			return err
		}
		_, err := k.run(ctx, "swarm", "addrs", "local")
		return err
	})
	if err != nil {
		k.stop()
		logb, _ := os.ReadFile(filepath.Join(k.repo, "daemon.log"))
		return fmt.Errorf("kubo in %s did not start: %v\n%s", k.repo, err, logb)
	}
	return nil
}

func (k *kubo) stop() {
	if k.d != nil {
		k.d.Stop(15 * time.Second)
		k.d = nil
	}
}

// forward forwards a free loopback port of k's namespace to proto at
// peer to (a full multiaddr), and returns it as host:port.
func (k *kubo) forward(ctx context.Context, proto, to string) (string, error) {
	port, err := freePort(k.e)
	if err != nil {
		return "", err
	}
	if _, err := k.run(ctx, "p2p", "forward", proto, "/ip4/127.0.0.1/tcp/"+strconv.Itoa(port), to); err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// startKubo is kubo's `ipfs p2p` over TCP, set up like p2ptun's paths: a
// node in B listens on both protocols, one in A forwards a port to each,
// and a third in A, restarted for each cold measurement, knows no peer.
func startKubo(ctx context.Context, env *linkEnv) (_ *setup, err error) {
	if env.cfg.Ipfs == "" {
		return nil, fmt.Errorf("%w: ipfs (kubo) is not on PATH", errSkip)
	}
	s := &setup{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	node := func(name string, e link.End, swarm string) (*kubo, error) {
		k := &kubo{bin: env.cfg.Ipfs, repo: filepath.Join(env.dir, "kubo-"+name), e: e}
		return k, k.initRepo(ctx, swarm)
	}
	b, err := node("listen", env.l.B, fmt.Sprintf("/ip4/%s/tcp/%d", env.l.B.Addr, kuboPort))
	if err != nil {
		return nil, err
	}
	a, err := node("forward", env.l.A, "/ip4/"+env.l.A.Addr.String()+"/tcp/0")
	if err != nil {
		return nil, err
	}
	cold, err := node("cold", env.l.A, "/ip4/"+env.l.A.Addr.String()+"/tcp/0")
	if err != nil {
		return nil, err
	}
	for _, k := range []*kubo{b, a} {
		if err := k.start(ctx); err != nil {
			return nil, err
		}
		s.stop = append(s.stop, k.stop)
	}
	s.stop = append(s.stop, cold.stop)
	out, err := b.run(ctx, "id", "-f", "<id>")
	if err != nil {
		return nil, err
	}
	to := fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", env.l.B.Addr, kuboPort, strings.TrimSpace(out))
	for proto, port := range map[string]int{protoIperf: iperfPort, protoEcho: env.echo} {
		if _, err := b.run(ctx, "p2p", "listen", proto, "/ip4/127.0.0.1/tcp/"+strconv.Itoa(port)); err != nil {
			return nil, err
		}
	}
	if s.Iperf, err = a.forward(ctx, protoIperf, to); err != nil {
		return nil, err
	}
	if s.Echo, err = a.forward(ctx, protoEcho, to); err != nil {
		return nil, err
	}
	s.cold = func(ctx context.Context) (time.Duration, error) {
		if err := cold.start(ctx); err != nil {
			return 0, err
		}
		defer cold.stop()
		addr, err := cold.forward(ctx, protoEcho, to)
		if err != nil {
			return 0, err
		}
		return firstByte(ctx, env.l.A, addr)
	}
	return s, ready(ctx, env.l.A, s.Echo)
}
