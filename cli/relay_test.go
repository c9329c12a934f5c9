package cli

import (
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/internal/harness"
)

func TestRelayCommands(t *testing.T) {
	r := startCommand(t, "relay", "--allow-all")
	b := startDaemon(t, "--relay", r.Addresses[0], "--reachability", "private")
	a := startDaemon(t)

	circuit := circuitAddr(t, b)
	if _, errOut, code := b.CLI(t, "listen", "/x/r", echoTarget(t), "--allow", a.ID); code != 0 {
		t.Fatal(errOut)
	}
	out, errOut, code := a.CLI(t, "forward", "/x/r", "127.0.0.1:0", circuit)
	if code != 0 {
		t.Fatalf("forward through the relay: %s", errOut)
	}
	c, err := net.Dial("tcp", harness.HostPort(t, out))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("via relay"))
	buf := make([]byte, 9)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "via relay" {
		t.Fatalf("relayed echo: %q, %v", buf, err)
	}
	out, _, _ = a.CLI(t, "stream", "ls", "--json")
	var l struct{ Streams []struct{ Path string } }
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Streams) != 1 || l.Streams[0].Path != "relayed via "+r.ID {
		t.Fatalf("stream ls: %s (%v), want one stream relayed via the relay", out, err)
	}
	out, _, code = a.CLI(t, "ping", "-n", "1", circuit)
	if code != 0 || !strings.Contains(out, "path=relayed via "+r.ID) {
		t.Fatalf("ping through the relay: %d %q", code, out)
	}
	// status shows b, the tunnel's peer, relayed with its RTT, and the
	// relay itself, connected directly.
	peers := map[string]api.PeerStatus{}
	for _, p := range statusOf(t, a).Peers {
		peers[p.Peer] = p
	}
	if p := peers[b.ID]; !p.Connected || p.Path != "relayed via "+r.ID || p.RTTMillis <= 0 || !p.Tunnel {
		t.Errorf("status: peer b = %+v; want connected, relayed via the relay, an RTT, a tunnel's peer", p)
	}
	if p := peers[r.ID]; !p.Connected || p.Path != "direct" || p.Tunnel {
		t.Errorf("status: the relay = %+v; want connected directly, no tunnel's peer", p)
	}
}

func TestRelayNeedsAnAllowList(t *testing.T) {
	_, errOut, code := run(t, "--home", harness.TempHome(t), "relay", "--listen-addr", "/ip4/127.0.0.1/tcp/0")
	if code != ExitUsage || !strings.Contains(errOut, "--allow") {
		t.Fatalf("relay without an allow list: %d %q", code, errOut)
	}
}

// circuitAddr waits for d, a daemon started with --relay, to advertise
// its address through the relay, and returns it.
func circuitAddr(t *testing.T, d *harness.Daemon) string {
	t.Helper()
	var circuit string
	waitUntil(t, "the daemon to advertise its relay address", func() bool {
		out, _, _ := d.CLI(t, "id")
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "/p2p-circuit/") {
				circuit = l
				return true
			}
		}
		return false
	})
	return circuit
}
