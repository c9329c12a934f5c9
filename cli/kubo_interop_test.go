package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/kuboconfig"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

// TestKuboInterop checks wire compatibility with kubo's `ipfs p2p` in both
// directions: a p2ptun forward reaches an `ipfs p2p listen`, an `ipfs p2p
// forward` reaches a p2ptun listener, and the --report-peer-id header is the
// same on both sides. It needs a kubo `ipfs` binary on PATH; the kubo node
// is configured to talk to loopback only (no bootstrap, routing, mDNS,
// AutoConf, relays or NAT traversal).
func TestKuboInterop(t *testing.T) {
	ipfsBin := kuboBinary(t)
	start := time.Now()

	k := startKubo(t, ipfsBin, kuboOptions{})
	t.Logf("kubo daemon %s ready at %s (%s)", k.id, k.addr, time.Since(start).Round(time.Millisecond))

	p2ptStart := time.Now()
	p := startP2ptunDaemon(t)
	t.Logf("p2ptun daemon %s ready at %s (%s)", p.ID, p.addr, time.Since(p2ptStart).Round(time.Millisecond))

	// Several MiB: many frames of streams.FrameSize each way, bigger than
	// the 64 KiB go-yamux (and so kubo) sends, and more than a fresh
	// stream's window.
	const size = 4 << 20

	// Direction 1, cold: a lazy forward's first client makes the first
	// connection to kubo and opens its stream before identify (package
	// peerdial's Cold): kubo's listener takes the protocol's name sent
	// ahead of the data. Closed after, so the listings below do not see it.
	echo1c := startKuboEchoTarget(t, false)
	k.run(t, "p2p", "listen", "/x/kubo-cold", echo1c.multiaddr())
	fwd1c := p.run(t, "forward", "--lazy", "/x/kubo-cold", "/ip4/127.0.0.1/tcp/0", k.addr)
	t.Run("p2ptun lazy forward to kubo listen, cold", func(t *testing.T) {
		kuboRoundTrip(t, fwd1c, size)
	})
	p.run(t, "close", "-p", "/x/kubo-cold")
	k.run(t, "p2p", "close", "-p", "/x/kubo-cold")

	// Direction 1: p2ptun forward -> kubo `ipfs p2p listen` -> TCP target.
	echo1 := startKuboEchoTarget(t, false)
	k.run(t, "p2p", "listen", "/x/kubo-echo", echo1.multiaddr())
	fwd1 := p.run(t, "forward", "/x/kubo-echo", "/ip4/127.0.0.1/tcp/0", k.addr)
	t.Run("p2ptun forward to kubo listen", func(t *testing.T) {
		kuboRoundTrip(t, fwd1, size)
		kuboRoundTrip(t, fwd1, 1) // a second connection is a second stream
	})

	// Direction 1b: kubo's --report-peer-id names the p2ptun peer.
	echo1r := startKuboEchoTarget(t, true)
	k.run(t, "p2p", "listen", "--report-peer-id", "/x/kubo-echo-id", echo1r.multiaddr())
	fwd1r := p.run(t, "forward", "/x/kubo-echo-id", "/ip4/127.0.0.1/tcp/0", k.addr)
	t.Run("p2ptun forward to kubo listen --report-peer-id", func(t *testing.T) {
		kuboRoundTrip(t, fwd1r, size)
		echo1r.wantHeader(t, p.ID)
	})

	// Direction 2: kubo `ipfs p2p forward` -> p2ptun listen -> TCP target.
	k.run(t, "swarm", "connect", p.addr)
	echo2 := startKuboEchoTarget(t, false)
	p.run(t, "listen", "/x/p2pt-echo", echo2.hostPort(), "--allow", k.id)
	k.run(t, "p2p", "forward", "/x/p2pt-echo", "/ip4/127.0.0.1/tcp/0", "/p2p/"+p.ID)
	fwd2 := k.forwardAddr(t, "/x/p2pt-echo")
	t.Run("kubo forward to p2ptun listen", func(t *testing.T) {
		kuboRoundTrip(t, fwd2, size)
		kuboRoundTrip(t, fwd2, 1)
	})

	// Direction 2b: p2ptun's --report-peer-id names the kubo peer.
	echo2r := startKuboEchoTarget(t, true)
	p.run(t, "listen", "/x/p2pt-echo-id", echo2r.multiaddr(), "--allow", k.id, "--report-peer-id")
	k.run(t, "p2p", "forward", "/x/p2pt-echo-id", "/ip4/127.0.0.1/tcp/0", "/p2p/"+p.ID)
	fwd2r := k.forwardAddr(t, "/x/p2pt-echo-id")
	t.Run("kubo forward to p2ptun listen --report-peer-id", func(t *testing.T) {
		kuboRoundTrip(t, fwd2r, size)
		echo2r.wantHeader(t, k.id)
	})

	// Direction 3: a p2ptun listener that does not allow kubo refuses it
	// with a reset code, which kubo does not read: its client sees the
	// connection end with nothing echoed, and the target is never dialed.
	echo3 := startKuboEchoTarget(t, false)
	p.run(t, "listen", "/x/p2pt-refuse", echo3.hostPort(), "--allow", harness.NewPeerID(t))
	k.run(t, "p2p", "forward", "/x/p2pt-refuse", "/ip4/127.0.0.1/tcp/0", "/p2p/"+p.ID)
	fwd3 := k.forwardAddr(t, "/x/p2pt-refuse")
	t.Run("kubo forward to a p2ptun listener that refuses it", func(t *testing.T) {
		conn := kuboDial(t, fwd3)
		if _, err := conn.Write([]byte("hello")); err != nil && !harness.IsReset(err) {
			t.Fatalf("write: %v", err)
		}
		got, err := io.ReadAll(conn)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the refused connection was still open after 30s (read %q)", got)
		}
		if len(got) != 0 {
			t.Errorf("a refused connection echoed %q", got)
		}
		if n := echo3.accepted.Load(); n != 0 {
			t.Errorf("the target of a listener that refuses kubo was dialed %d times", n)
		}
	})

	t.Run("ipfs p2p ls", func(t *testing.T) {
		got := k.listeners(t)
		want := []kuboListener{
			{"/x/kubo-echo", "/p2p/" + k.id, echo1.multiaddr()},
			{"/x/kubo-echo-id", "/p2p/" + k.id, echo1r.multiaddr()},
			{"/x/p2pt-echo", harness.TCPMultiaddr(t, fwd2).String(), "/p2p/" + p.ID},
			{"/x/p2pt-echo-id", harness.TCPMultiaddr(t, fwd2r).String(), "/p2p/" + p.ID},
			{"/x/p2pt-refuse", harness.TCPMultiaddr(t, fwd3).String(), "/p2p/" + p.ID},
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("ipfs p2p ls: missing %+v; got %+v", w, got)
			}
		}
		if len(got) != len(want) {
			t.Errorf("ipfs p2p ls: %d listeners, want %d: %+v", len(got), len(want), got)
		}
	})

	t.Run("p2ptun ls --json", func(t *testing.T) {
		var list api.ListenerList
		out := p.run(t, "ls", "--json")
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("p2ptun ls --json: %v\n%s", err, out)
		}
		byProto := map[string]api.Listener{}
		for _, l := range list.Listeners {
			byProto[l.Protocol] = l
		}
		if len(list.Listeners) != 5 || len(byProto) != 5 {
			t.Errorf("p2ptun ls --json: %d listeners, want 5:\n%s", len(list.Listeners), out)
		}
		for proto, laddr := range map[string]string{"/x/kubo-echo": fwd1, "/x/kubo-echo-id": fwd1r} {
			l, ok := byProto[proto]
			if !ok {
				t.Errorf("p2ptun ls --json: no %s forward:\n%s", proto, out)
				continue
			}
			if l.Kind != "forward" || l.ListenAddress != laddr || l.TargetAddress != "/p2p/"+k.id || l.Peer != k.id {
				t.Errorf("p2ptun ls --json: %s = %+v; want forward %s -> /p2p/%s", proto, l, laddr, k.id)
			}
		}
		for proto, want := range map[string]struct {
			target string
			report bool
		}{
			"/x/p2pt-echo":    {echo2.multiaddr(), false},
			"/x/p2pt-echo-id": {echo2r.multiaddr(), true},
		} {
			l, ok := byProto[proto]
			if !ok {
				t.Errorf("p2ptun ls --json: no %s listener:\n%s", proto, out)
				continue
			}
			if l.Kind != "listen" || l.ListenAddress != "/p2p/"+p.ID || l.TargetAddress != want.target ||
				!slices.Equal(l.AllowedPeers, []string{k.id}) || l.AllowAll || l.ReportPeerID != want.report {
				t.Errorf("p2ptun ls --json: %s = %+v; want listen /p2p/%s -> %s allowing only %s, report-peer-id %v",
					proto, l, p.ID, want.target, k.id, want.report)
			}
		}
	})

	// Direction 2c (after the listings, which count the listeners above):
	// p2ptun's --proxy-protocol v2 names the kubo peer in TLV 0xE0.
	target2p, told := testnet.ServeProxied(t)
	p.run(t, "listen", "/x/p2pt-echo-pp", target2p, "--allow", k.id, "--proxy-protocol", "v2")
	k.run(t, "p2p", "forward", "/x/p2pt-echo-pp", "/ip4/127.0.0.1/tcp/0", "/p2p/"+p.ID)
	fwd2p := k.forwardAddr(t, "/x/p2pt-echo-pp")
	t.Run("kubo forward to p2ptun listen --proxy-protocol v2", func(t *testing.T) {
		h := testnet.EchoProxied(t, kuboDial(t, fwd2p), told, "who")
		tlvs, err := h.TLVs()
		if err != nil || !h.Command.IsProxy() || len(tlvs) != 1 || tlvs[0].Type != 0xE0 || string(tlvs[0].Value) != k.id {
			t.Fatalf("header %+v, TLVs %+v (%v); want PROXY and 0xE0 = %s", h, tlvs, err, k.id)
		}
	})

	t.Logf("kubo interop total %s", time.Since(start).Round(time.Millisecond))
}

// kuboBinary returns the kubo `ipfs` binary on PATH, or skips the test.
func kuboBinary(t *testing.T) string {
	t.Helper()
	ipfsBin, err := exec.LookPath("ipfs")
	if err != nil {
		t.Skip("kubo interop: `ipfs` not on PATH; build kubo and put ipfs on PATH to run this test")
	}
	return ipfsBin
}

// kuboNode is a kubo daemon run from a throwaway IPFS_PATH.
type kuboNode struct {
	bin  string
	env  []string
	id   string
	addr string // loopback TCP multiaddr ending in /p2p/ID
	out  *syncBuf
}

// kuboOptions adjusts startKubo.
type kuboOptions struct {
	// swarmKey, if set, is written to $IPFS_PATH/swarm.key (mode 0600), so
	// the node joins that private network. The transports that cannot carry
	// the key (QUIC, WebTransport, WebRTC) and WebSocket are disabled, the
	// daemon runs with LIBP2P_FORCE_PNET=1 (kubo then refuses to start
	// without a key) and it must report the private network on startup.
	swarmKey []byte
}

// startKubo initializes a loopback-only kubo repo, starts `ipfs daemon`
// and waits until its API answers with a listen address. Cleanup stops the
// daemon (SIGINT, then SIGKILL) and waits for it.
func startKubo(t *testing.T, bin string, opts kuboOptions) *kuboNode {
	t.Helper()
	repo := t.TempDir()
	k := &kuboNode{
		bin: bin,
		// IPFS_TELEMETRY=off is already kubo's default; be explicit.
		env: append(os.Environ(), "IPFS_PATH="+repo, "IPFS_TELEMETRY=off"),
		out: &syncBuf{},
	}
	k.run(t, "init", "--profile=test")

	cfg := k.config(t)
	if !slices.Equal(cfg.Addresses.Swarm, []string{"/ip4/127.0.0.1/tcp/0"}) {
		t.Fatalf("kubo test profile: Addresses.Swarm = %q, want [/ip4/127.0.0.1/tcp/0]", cfg.Addresses.Swarm)
	}
	if len(cfg.Bootstrap) != 0 {
		t.Fatalf("kubo test profile: Bootstrap = %q, want none", cfg.Bootstrap)
	}

	// Loopback only, nothing that reaches the internet.
	for _, kv := range kuboconfig.Loopback {
		k.run(t, "config", "--json", kv[0], kv[1])
	}
	daemonEnv := k.env
	if opts.swarmKey != nil {
		if err := os.WriteFile(filepath.Join(repo, "swarm.key"), opts.swarmKey, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tpt := range []string{"QUIC", "WebTransport", "WebRTCDirect", "Websocket"} {
			k.run(t, "config", "--json", "Swarm.Transports.Network."+tpt, `false`)
		}
		daemonEnv = append(slices.Clip(k.env), "LIBP2P_FORCE_PNET=1")
	}
	cfg = k.config(t)
	for name, addrs := range map[string][]string{
		"Addresses.Swarm": cfg.Addresses.Swarm, "Addresses.API": cfg.Addresses.API.list,
		"Addresses.Gateway": cfg.Addresses.Gateway.list,
	} {
		if len(addrs) == 0 {
			t.Fatalf("kubo config: %s is empty", name)
		}
		for _, a := range addrs {
			if !strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
				t.Fatalf("kubo config: %s has %s, want only /ip4/127.0.0.1/tcp/…", name, a)
			}
		}
	}
	if len(cfg.Bootstrap) != 0 || cfg.Routing.Type != "none" || cfg.Discovery.MDNS.Enabled ||
		!cfg.Experimental.Libp2pStreamMounting {
		t.Fatalf("kubo config not applied: %+v", cfg)
	}
	if opts.swarmKey != nil {
		n := cfg.Swarm.Transports.Network
		for name, on := range map[string]*bool{
			"QUIC": n.QUIC, "WebTransport": n.WebTransport, "WebRTCDirect": n.WebRTCDirect, "Websocket": n.Websocket,
		} {
			if on == nil || *on {
				t.Fatalf("kubo config: Swarm.Transports.Network.%s not disabled", name)
			}
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "daemon")
	cmd.Env = daemonEnv
	cmd.Stdout, cmd.Stderr = k.out, k.out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second // then SIGKILL
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting ipfs daemon: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Errorf("ipfs daemon (pid %d) did not exit after SIGINT and SIGKILL", cmd.Process.Pid)
			return
		}
		if t.Failed() {
			t.Logf("ipfs daemon exited (%v); output:\n%s", waitErr, k.out)
		}
	})

	// The daemon writes $IPFS_PATH/api once its RPC API listens; before
	// that `ipfs id` would run offline and show no addresses.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(repo, "api")); err == nil {
			var id struct {
				ID        string
				Addresses []string
			}
			out, err := k.try("id")
			if err == nil && json.Unmarshal(out, &id) == nil {
				for _, a := range id.Addresses {
					if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") && strings.HasSuffix(a, "/p2p/"+id.ID) &&
						strings.Count(a, "/") == 6 {
						k.id, k.addr = id.ID, a
					}
				}
				if k.addr != "" {
					for _, a := range id.Addresses {
						if !strings.HasPrefix(a, "/ip4/127.0.0.1/") {
							t.Errorf("kubo announces a non-loopback address %s", a)
						}
					}
					// Printed before the API starts, so it is in k.out now.
					const pnetMsg = "Swarm is limited to private network of peers with the swarm key"
					if opts.swarmKey != nil && !strings.Contains(k.out.String(), pnetMsg) {
						t.Fatalf("ipfs daemon with swarm.key did not report %q:\n%s", pnetMsg, k.out)
					}
					return k
				}
			}
		}
		select {
		case <-exited:
			t.Fatalf("ipfs daemon exited before it was ready (%v):\n%s", waitErr, k.out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ipfs daemon not ready after 60s:\n%s", k.out)
		}
	}
}

// kuboAddrList is a kubo config field that is a string or a list of strings.
type kuboAddrList struct{ list []string }

func (l *kuboAddrList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		l.list = []string{s}
		return nil
	}
	return json.Unmarshal(b, &l.list)
}

// kuboConfig is the part of kubo's config this test depends on.
type kuboConfig struct {
	Addresses struct {
		Swarm        []string
		API, Gateway kuboAddrList
	}
	Bootstrap    []string
	Discovery    struct{ MDNS struct{ Enabled bool } }
	Routing      struct{ Type string }
	Experimental struct {
		Libp2pStreamMounting bool
	}
	Swarm struct {
		Transports struct {
			Network struct{ QUIC, WebTransport, WebRTCDirect, Websocket *bool }
		}
	}
}

func (k *kuboNode) config(t *testing.T) kuboConfig {
	t.Helper()
	var cfg kuboConfig
	out := k.run(t, "config", "show")
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("ipfs config show: %v\n%s", err, out)
	}
	return cfg
}

// try runs one ipfs command with a bounded context and returns its stdout,
// or an error that includes its stderr.
func (k *kuboNode) try(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, k.bin, args...)
	cmd.Env = k.env
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("ipfs %s: %w\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, &stdout, &stderr)
	}
	return stdout.Bytes(), nil
}

// run is try that fails the test on error.
func (k *kuboNode) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := k.try(args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// kuboListener is one entry of `ipfs p2p ls --enc=json`.
type kuboListener struct {
	Protocol, ListenAddress, TargetAddress string
}

func (k *kuboNode) listeners(t *testing.T) []kuboListener {
	t.Helper()
	var ls struct{ Listeners []kuboListener }
	out := k.run(t, "p2p", "ls", "--enc=json")
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		t.Fatalf("ipfs p2p ls --enc=json: %v\n%s", err, out)
	}
	return ls.Listeners
}

// forwardAddr returns the host:port that kubo bound for the forward of
// proto (opened with port 0).
func (k *kuboNode) forwardAddr(t *testing.T, proto string) string {
	t.Helper()
	for _, l := range k.listeners(t) {
		if l.Protocol == proto && !strings.HasPrefix(l.ListenAddress, "/p2p/") {
			m, err := ma.NewMultiaddr(l.ListenAddress)
			if err != nil {
				t.Fatalf("ipfs p2p ls: %s: %v", l.ListenAddress, err)
			}
			a, err := manet.ToNetAddr(m)
			if err != nil {
				t.Fatalf("ipfs p2p ls: %s: %v", l.ListenAddress, err)
			}
			return a.String()
		}
	}
	t.Fatalf("ipfs p2p ls: no forward for %s", proto)
	return ""
}

// p2ptunDaemon is `p2ptun daemon` run in-process by cli.Run, with the
// loopback TCP address kubo dials.
type p2ptunDaemon struct {
	*harness.Daemon
	addr string // loopback TCP multiaddr ending in /p2p/ID
}

// startP2ptunDaemon runs an ephemeral p2ptun daemon on loopback, with
// extra daemon flags, and waits for its ready file. Cleanup stops it and
// checks that it exits 0 and cleans up.
func startP2ptunDaemon(t *testing.T, extra ...string) *p2ptunDaemon {
	t.Helper()
	h := harness.Start(t, harness.Spec{Run: Run, Args: append([]string{"--ephemeral"}, extra...)})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("p2ptun daemon log:\n%s", h.Logs)
		}
	})
	d := &p2ptunDaemon{Daemon: h}
	for _, a := range h.Addresses {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") && strings.Count(a, "/") == 6 {
			d.addr = a
		}
	}
	if d.addr == "" {
		t.Fatalf("ready file lacks a loopback TCP address: %+v", h.Ready)
	}
	return d
}

// run runs one p2ptun client command against the daemon, fails the test
// on a non-zero exit and returns the trimmed stdout.
func (d *p2ptunDaemon) run(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, c := d.CLI(t, args...)
	if c != 0 {
		t.Fatalf("p2ptun %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), c, stdout, stderr)
	}
	return strings.TrimSpace(stdout)
}

// kuboRoundTrip connects to addr (host:port or a TCP multiaddr), writes
// size random bytes and reads the same bytes back. It does not half-close:
// kubo ends both directions at the first EOF.
func kuboRoundTrip(t *testing.T, addr string, size int) {
	t.Helper()
	conn := kuboDial(t, addr)
	data := make([]byte, size)
	rand.Read(data)
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(data)
		werr <- err
	}()
	got := make([]byte, size)
	if n, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("via %s: read %d of %d echoed bytes: %v", addr, n, size, err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("via %s: write: %v", addr, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("via %s: echoed %d bytes differ from those sent", addr, size)
	}
}

// kuboDial connects to addr (a multiaddr or host:port) with a 30 s
// deadline on the whole connection, closed when the test ends.
func kuboDial(t *testing.T, addr string) net.Conn {
	t.Helper()
	if strings.HasPrefix(addr, "/") {
		m, err := ma.NewMultiaddr(addr)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		a, err := manet.ToNetAddr(m)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		addr = a.String()
	}
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// kuboEchoTarget is a local TCP service that echoes until EOF, then
// half-closes. With header set it first reads one line (the peer ID a
// --report-peer-id listener sends) and records it instead of echoing it.
type kuboEchoTarget struct {
	ln      net.Listener
	header  bool
	headers chan string

	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
	accepted atomic.Int64 // connections accepted
}

func startKuboEchoTarget(t *testing.T, header bool) *kuboEchoTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &kuboEchoTarget{ln: ln, header: header, headers: make(chan string, 16), conns: map[net.Conn]struct{}{}}
	e.wg.Add(1)
	go e.serve()
	t.Cleanup(e.close)
	return e
}

func (e *kuboEchoTarget) hostPort() string { return e.ln.Addr().String() }

func (e *kuboEchoTarget) multiaddr() string {
	return fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", e.ln.Addr().(*net.TCPAddr).Port)
}

func (e *kuboEchoTarget) serve() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return
		}
		e.accepted.Add(1)
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			c.Close()
			return
		}
		e.conns[c] = struct{}{}
		e.wg.Add(1)
		e.mu.Unlock()
		go e.echo(c)
	}
}

func (e *kuboEchoTarget) echo(c net.Conn) {
	defer e.wg.Done()
	defer func() {
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
		c.Close()
	}()
	var r io.Reader = c
	if e.header {
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil {
			line = fmt.Sprintf("<no header line: %q, %v>", line, err)
		}
		select {
		case e.headers <- line:
		default:
		}
		r = br
	}
	if _, err := io.Copy(c, r); err == nil {
		_ = c.(*net.TCPConn).CloseWrite()
	}
}

// wantHeader checks the header line of the next connection.
func (e *kuboEchoTarget) wantHeader(t *testing.T, peerID string) {
	t.Helper()
	select {
	case got := <-e.headers:
		if got != peerID+"\n" {
			t.Errorf("target got header %q, want %q", got, peerID+"\n")
		}
	case <-time.After(10 * time.Second):
		t.Errorf("target got no connection with a header")
	}
}

// close stops accepting, closes live connections and waits for the
// handlers.
func (e *kuboEchoTarget) close() {
	e.mu.Lock()
	e.closed = true
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	e.ln.Close()
	e.wg.Wait()
}
