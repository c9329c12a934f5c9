//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/bench/procs"
	"github.com/p2ptun/p2ptun/bench/wan/link"
)

// A path is one way to carry the bytes from A's namespace across the link
// to the servers in B's: plain TCP (socat), p2ptun over TCP or QUIC, kubo.
type path struct {
	// Key names the path in results.json, Name in the table; Color is
	// its bars' in results.svg.
	Key, Name, Color string
	start            func(ctx context.Context, env *linkEnv) (*setup, error)
}

// A linkEnv is what a path starts on: the link, its servers in B, and the
// run's homes (made once, reused on every link).
type linkEnv struct {
	cfg  config
	l    *link.Link
	echo int    // the echo server's port in B
	dir  string // the run's homes
}

// A setup is a started path: the addresses in A that reach iperf3's
// server and the echo server in B, and how to measure a cold connection.
type setup struct {
	Iperf, Echo string
	// cold measures connect and first byte through a new peer.
	cold func(ctx context.Context) (time.Duration, error)
	stop []func()
}

func (s *setup) Close() {
	for i := len(s.stop) - 1; i >= 0; i-- {
		s.stop[i]()
	}
}

// The protocols of the tunnels to the two servers.
const (
	protoIperf = "/x/wan-iperf"
	protoEcho  = "/x/wan-echo"
)

// paths are the paths in the order they are measured and shown; the first
// is the baseline the goals compare with.
func paths() []path {
	return []path{
		{Key: "tcp", Name: "plain TCP (socat)", Color: "#f28e2b", start: startSocat},
		{Key: "p2ptun-tcp", Name: "p2ptun TCP", Color: "#4e79a7", start: p2ptunStarter("tcp")},
		{Key: "p2ptun-quic", Name: "p2ptun QUIC", Color: "#59a14f", start: p2ptunStarter("quic")},
		{Key: "kubo", Name: "kubo ipfs p2p", Color: "#b07aa1", start: startKubo},
	}
}

// socatForward runs socat in A, forwarding a free loopback port to to.
func socatForward(ctx context.Context, env *linkEnv, s *setup, to string) (string, error) {
	port, err := freePort(env.l.A)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("socat", fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,backlog=1024", port), "TCP:"+to)
	r, err := procs.Start(cmd, env.l.A.Start)
	if err != nil {
		return "", fmt.Errorf("socat: %w", err)
	}
	s.stop = append(s.stop, func() { r.Stop(5 * time.Second) })
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// startSocat is plain TCP across the link: socat in A forwards iperf3 to
// its server's address in B.
func startSocat(ctx context.Context, env *linkEnv) (_ *setup, err error) {
	if _, err := exec.LookPath("socat"); err != nil {
		return nil, fmt.Errorf("%w: socat is not installed (Debian package socat)", errSkip)
	}
	s := &setup{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	b := env.l.B.Addr.String()
	if s.Iperf, err = socatForward(ctx, env, s, net.JoinHostPort(b, strconv.Itoa(iperfPort))); err != nil {
		return nil, err
	}
	// The echo is dialled directly: a new TCP connection across the link,
	// without socat's fork, is plain TCP's first byte, warm or cold alike.
	s.Echo = net.JoinHostPort(b, strconv.Itoa(env.echo))
	s.cold = func(ctx context.Context) (time.Duration, error) { return firstByte(ctx, env.l.A, s.Echo) }
	return s, ready(ctx, env.l.A, s.Echo)
}

// ready waits until an echo through addr (in e) comes back.
func ready(ctx context.Context, e link.End, addr string) error {
	return procs.Poll(ctx, 30*time.Second, func() error {
		_, err := firstByte(ctx, e, addr)
		return err
	})
}

// freePort is a loopback TCP port in e's namespace that was free a moment ago.
func freePort(e link.End) (int, error) {
	ln, err := e.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// swarmAddr is the one swarm address of a daemon at ip over transport.
func swarmAddr(ip net.IP, transport string) string {
	if transport == "quic" {
		return "/ip4/" + ip.String() + "/udp/0/quic-v1"
	}
	return "/ip4/" + ip.String() + "/tcp/0"
}

// p2ptunStarter starts p2ptun over transport ("tcp" or "quic"): a daemon
// in B listens on both servers' protocols, one in A forwards a port to
// each. The cold measurement restarts a third daemon in A (a process that
// knows no peer) and times a --lazy forward's first connection. All three
// run with the limits `p2ptun init` writes, as users run them.
func p2ptunStarter(transport string) func(context.Context, *linkEnv) (*setup, error) {
	return func(ctx context.Context, env *linkEnv) (_ *setup, err error) {
		s := &setup{}
		defer func() {
			if err != nil {
				s.Close()
			}
		}()
		start := func(name string, e link.End) (*procs.Daemon, error) {
			d, err := procs.StartDaemon(ctx, procs.Options{Bin: env.cfg.P2ptun, Home: filepath.Join(env.dir, transport+"-"+name),
				Listen: swarmAddr(e.Addr, transport), Defaults: true, Start: e.Start})
			return d, err
		}
		var ds []*procs.Daemon
		s.stop = append(s.stop, func() {
			for _, d := range ds {
				d.Stop(15 * time.Second)
			}
		})
		for _, e := range []link.End{env.l.B, env.l.A} {
			name := map[bool]string{true: "listen", false: "forward"}[e.NS == env.l.B.NS]
			d, err := start(name, e)
			if err != nil {
				return nil, err
			}
			ds = append(ds, d)
		}
		lis, fwd := ds[0], ds[1]
		// The cold daemon runs only to be measured; its ID is needed now.
		cold, err := start("cold", env.l.A)
		if err != nil {
			return nil, err
		}
		cold.Stop(15 * time.Second)
		for proto, port := range map[string]int{protoIperf: iperfPort, protoEcho: env.echo} {
			if _, err := lis.CLI(ctx, "listen", proto, "127.0.0.1:"+strconv.Itoa(port), "--allow", fwd.ID.ID, "--allow", cold.ID.ID); err != nil {
				return nil, err
			}
		}
		to := lis.ID.Addresses[0]
		if s.Iperf, err = p2ptunForward(ctx, fwd, protoIperf, to); err != nil {
			return nil, err
		}
		if s.Echo, err = p2ptunForward(ctx, fwd, protoEcho, to); err != nil {
			return nil, err
		}
		s.cold = func(ctx context.Context) (time.Duration, error) {
			d, err := start("cold", env.l.A)
			if err != nil {
				return 0, err
			}
			defer d.Stop(15 * time.Second)
			addr, err := p2ptunForward(ctx, d, protoEcho, to, "--lazy")
			if err != nil {
				return 0, err
			}
			return firstByte(ctx, env.l.A, addr)
		}
		return s, ready(ctx, env.l.A, s.Echo)
	}
}

// p2ptunForward forwards a free loopback port of d's namespace to proto
// on peer to, and returns it as host:port.
func p2ptunForward(ctx context.Context, d *procs.Daemon, proto, to string, flags ...string) (string, error) {
	out, err := d.CLI(ctx, append(append([]string{"forward"}, flags...), proto, "/ip4/127.0.0.1/tcp/0", to)...)
	if err != nil {
		return "", err
	}
	m, err := ma.NewMultiaddr(strings.TrimSpace(out))
	if err != nil {
		return "", fmt.Errorf("forward printed %q: %w", out, err)
	}
	a, err := manet.ToNetAddr(m)
	if err != nil {
		return "", fmt.Errorf("forward printed %q: %w", out, err)
	}
	return a.String(), nil
}
