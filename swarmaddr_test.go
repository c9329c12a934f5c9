package main

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/cli"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

// failsWithOneLine runs a daemon that must not start: exit code want, and
// stderr one "p2ptun:" line that says says.
func failsWithOneLine(t *testing.T, want int, says string, args ...string) {
	t.Helper()
	args = append([]string{"--home", harness.TempHome(t), "daemon", "--ephemeral"}, args...)
	out, errOut, code := harness.Run(t, args...)
	if code != want || out != "" || !strings.HasPrefix(errOut, "p2ptun: ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, says) {
		t.Fatalf("p2ptun %s: exit %d, want %d; stdout %q; stderr, want one line saying %q:\n%s",
			strings.Join(args, " "), code, want, out, says, errOut)
	}
}

// TestDaemonSwarmPortInUse: a swarm port that anything holds, a running
// p2ptun daemon (which binds with SO_REUSEPORT) or a plain listener, stops
// the daemon before it starts, rather than splitting the port's inbound
// connections with the other.
func TestDaemonSwarmPortInUse(t *testing.T) {
	t.Run("another daemon, TCP", func(t *testing.T) {
		addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", testnet.FreePort(t))
		harness.Start(t, harness.Spec{ListenAddr: addr})
		failsWithOneLine(t, cli.ExitConflict, "address already in use", "--listen-addr", addr)
	})
	t.Run("another daemon, QUIC", func(t *testing.T) {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
		addr := fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port)
		harness.Start(t, harness.Spec{ListenAddr: addr})
		failsWithOneLine(t, cli.ExitConflict, "address already in use", "--listen-addr", addr)
	})
	t.Run("a plain listener", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addr := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ln.Addr().(*net.TCPAddr).Port)
		failsWithOneLine(t, cli.ExitConflict, "address already in use", "--listen-addr", "/ip4/127.0.0.1/tcp/0", "--listen-addr", addr)
	})
}

// TestDaemonSwarmAddrUnusable: listen addresses the swarm cannot use are
// one line and a usage error, before anything is bound.
func TestDaemonSwarmAddrUnusable(t *testing.T) {
	for name, tc := range map[string]struct{ addr, says string }{
		"unix socket":        {"/unix/tmp/p2ptun.sock", "cannot listen on"},
		"UDP without QUIC":   {"/ip4/127.0.0.1/udp/0", "cannot listen on"},
		"DNS name":           {"/dns4/localhost/tcp/0", "cannot listen on"},
		"not on this host":   {"/ip4/192.0.2.1/tcp/0", "not an address of this host"},
		"not a multiaddr":    {"/ip4/127.0.0.1/tcp", "not a multiaddr"},
		"host:port, bad IP":  {"192.0.2.1:0", "not an address of this host"},
		"host:port, no port": {"127.0.0.1", "neither"},
		"host:port, no host": {":0", "needs a host"},
	} {
		t.Run(name, func(t *testing.T) {
			failsWithOneLine(t, cli.ExitUsage, tc.says, "--listen-addr", tc.addr)
		})
	}
}

// TestDaemonListenAddrHostPort: --listen-addr takes host:port like the
// other address flags: TCP and QUIC on that host, as the defaults are.
func TestDaemonListenAddrHostPort(t *testing.T) {
	d := harness.Start(t, harness.Spec{ListenAddr: "localhost:0"})
	out, errOut, code := d.CLI(t, "id")
	if code != 0 || !strings.Contains(out, "/ip4/127.0.0.1/tcp/") || !strings.Contains(out, "/ip4/127.0.0.1/udp/") {
		t.Fatalf("id: exit %d, want /ip4/127.0.0.1/tcp/ and /udp/…/quic-v1 addresses:\n%s%s", code, out, errOut)
	}
}
