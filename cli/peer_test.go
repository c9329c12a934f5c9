package cli

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

// mustCLI runs a command against d and returns its stdout; a non-zero exit
// fails the test.
func mustCLI(t *testing.T, d *harness.Daemon, args ...string) string {
	t.Helper()
	out, errOut, code := d.CLI(t, args...)
	if code != 0 {
		t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func listeners(t *testing.T, d *harness.Daemon) []api.Listener {
	t.Helper()
	var l api.ListenerList
	if err := json.Unmarshal([]byte(mustCLI(t, d, "ls", "--json")), &l); err != nil {
		t.Fatal(err)
	}
	return l.Listeners
}

// TestPeerNamesThroughEveryCommand: a name given with `peer add` works
// wherever a PEER does (listen --allow, forward with one peer and with
// several, pipe, ping, access), at once on a running daemon; ls, stream ls
// and events show it beside the peer ID; an unknown name is bad input with
// a hint; a config table's name is resolved at reload and a name changed
// under a running tunnel takes effect at the next reload.
func TestPeerNamesThroughEveryCommand(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	echo := testnet.Serve(t, testnet.Echo)
	mustCLI(t, a, "peer", "add", "bob", b.Addresses[0])
	mustCLI(t, b, "peer", "add", "alice", "/p2p/"+a.ID)

	var names api.PeerNameList
	if err := json.Unmarshal([]byte(mustCLI(t, a, "peer", "ls", "--json")), &names); err != nil ||
		len(names.Peers) != 1 || names.Peers[0].Name != "bob" || names.Peers[0].Peer != b.ID {
		t.Fatalf("peer ls --json = %+v (%v)", names, err)
	}

	t.Run("listen --allow", func(t *testing.T) {
		mustCLI(t, b, "listen", "/x/echo", echo, "--allow", "alice")
		ls := listeners(t, b)
		if len(ls) != 1 || !slices.Equal(ls[0].AllowedPeers, []string{a.ID}) {
			t.Fatalf("ls = %+v, want /x/echo allowing [%s]", ls, a.ID)
		}
		if ls[0].AllowedPeerNames[a.ID] != "alice" {
			t.Errorf("ls --json: AllowedPeerNames = %v, want %s: alice", ls[0].AllowedPeerNames, a.ID)
		}
		if out := mustCLI(t, b, "ls"); !strings.Contains(out, a.ID+"(alice)") {
			t.Errorf("ls = %q, want the allowed peer's name beside its ID", out)
		}
		ov := statusOf(t, b)
		if tn, ok := tunnelNamed(ov, "listen /x/echo"); !ok || len(tn.Peers) != 1 || tn.Peers[0] != (api.TunnelPeer{Peer: a.ID, PeerName: "alice"}) {
			t.Errorf("status --json: tunnel %+v (found %v), want it for %s (alice)", tn, ok, a.ID)
		}
	})
	t.Run("ticket", func(t *testing.T) {
		tk := strings.TrimSpace(mustCLI(t, b, "share", "/x/echo"))
		mustCLI(t, a, "peer", "add", "bob-ticket", tk)
		var l api.PeerNameList
		if err := json.Unmarshal([]byte(mustCLI(t, a, "peer", "ls", "--json")), &l); err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(l.Peers, func(p api.PeerName) bool { return p.Name == "bob-ticket" })
		if i < 0 || l.Peers[i].Peer != b.ID || !strings.HasPrefix(l.Peers[i].Addr, "/ip4/") {
			t.Fatalf("peer ls = %+v, want bob-ticket at an address of %s", l.Peers, b.ID)
		}
		mustCLI(t, a, "peer", "rm", "bob-ticket")
	})
	var fwd string
	t.Run("forward", func(t *testing.T) {
		events := a.Events(t)
		out := mustCLI(t, a, "forward", "/x/echo", "0", "bob")
		fwd = harness.HostPort(t, strings.TrimSpace(out))
		c, err := net.Dial("tcp", fwd)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		harness.Echoes(t, c, "through a name")
		ev := harness.NextEvent(t, events, 30*time.Second, "stream_open", func(e harness.Event) bool { return e.Type == api.EventStreamOpen })
		if ev.Peer != b.ID || ev.PeerName != "bob" {
			t.Errorf("stream_open peer %s name %q, want %s bob", ev.Peer, ev.PeerName, b.ID)
		}
		streams := streamList(t, a)
		if len(streams) != 1 || streams[0].PeerName != "bob" {
			t.Errorf("stream ls on a = %+v, want one stream to bob", streams)
		}
		if in := streamList(t, b); len(in) != 1 || in[0].PeerName != "alice" {
			t.Errorf("stream ls on b = %+v, want one stream from alice", in)
		}
		if out := mustCLI(t, a, "stream", "ls"); !strings.Contains(out, "/p2p/"+b.ID+"(bob)") {
			t.Errorf("stream ls = %q, want the name beside the peer", out)
		}
		ov := statusOf(t, a)
		i := slices.IndexFunc(ov.Peers, func(p api.PeerStatus) bool { return p.Peer == b.ID })
		if i < 0 || ov.Peers[i].PeerName != "bob" {
			t.Errorf("status --json: peers %+v, want %s named bob", ov.Peers, b.ID)
		}
		j := slices.IndexFunc(ov.Tunnels, func(t api.TunnelOverview) bool { return t.Kind == "forward" })
		if j < 0 || len(ov.Tunnels[j].Peers) != 1 || ov.Tunnels[j].Peers[0] != (api.TunnelPeer{Peer: b.ID, PeerName: "bob"}) {
			t.Errorf("status --json: tunnels %+v, want the forward to %s (bob)", ov.Tunnels, b.ID)
		}
		if out := mustCLI(t, a, "status"); strings.Count(out, b.ID+"(bob)") != 2 {
			t.Errorf("status = %q, want bob's name beside its ID in the tunnel and the peer", out)
		}
	})
	t.Run("ls", func(t *testing.T) {
		var found bool
		for _, l := range listeners(t, a) {
			if l.Kind == "forward" && l.Peer == b.ID {
				found = l.PeerName == "bob"
			}
		}
		if !found {
			t.Errorf("ls --json: no forward to %s named bob", b.ID)
		}
		if out := mustCLI(t, a, "ls"); !strings.Contains(out, "/p2p/"+b.ID+"(bob)") {
			t.Errorf("ls = %q, want the name beside the peer", out)
		}
	})
	t.Run("forward --save", func(t *testing.T) {
		// bob was named through the daemon after it started: no reload
		// has read it.
		mustCLI(t, a, "forward", "/x/echo", "127.0.0.1:0", "bob", "--lazy", "--save", "--name", "saved")
		c, err := config.LoadFile(filepath.Join(a.Home, config.ConfigFile))
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(c.Forward, func(f config.ForwardTunnel) bool { return f.Name == "saved" })
		if i < 0 || c.Forward[i].Peer != "bob" {
			t.Fatalf("config.toml's forwards %+v: want saved to bob, by its name", c.Forward)
		}
	})
	t.Run("forward to several", func(t *testing.T) {
		mustCLI(t, a, "peer", "add", "bob2", "/p2p/"+b.ID)
		out := mustCLI(t, a, "forward", "/x/echo", ":0", "bob", harness.NewPeerID(t), "--lazy")
		if !strings.Contains(out, "127.0.0.1") {
			t.Errorf("forward :0 bound %q, want loopback", out)
		}
	})
	t.Run("pipe", func(t *testing.T) {
		p := startPipe(t, a, "bob", "/x/echo")
		p.send(t, "piped by name\n")
		p.expect(t, "piped by name\n")
	})
	t.Run("ping", func(t *testing.T) {
		mustCLI(t, a, "ping", "-n", "1", "bob")
	})
	t.Run("access", func(t *testing.T) {
		var l api.AccessList
		if err := json.Unmarshal([]byte(mustCLI(t, b, "access", "deny", "--json", "alice")), &l); err != nil || !slices.Equal(l.Deny, []string{a.ID}) {
			t.Fatalf("access deny alice = %+v (%v), want [%s]", l, err, a.ID)
		}
		mustCLI(t, b, "access", "revoke", "alice")
	})
	t.Run("unknown name", func(t *testing.T) {
		for _, args := range [][]string{
			{"forward", "/x/echo", "0", "carol"},
			{"ping", "carol"},
			{"access", "allow", "carol"},
			{"listen", "/x/other", echo, "--allow", "carol"},
		} {
			_, errOut, code := a.CLI(t, args...)
			if code != ExitUsage || !strings.Contains(errOut, "p2ptun peer add carol PEER-ADDR") || strings.Count(errOut, "\n") != 1 {
				t.Errorf("%v: exit %d %q, want %d and one line with the hint", args, code, errOut, ExitUsage)
			}
		}
	})
	t.Run("address as typed", func(t *testing.T) {
		_, errOut, code := a.CLI(t, "forward", "/x/echo", "example.com:9000", "bob")
		if code != ExitUsage || !strings.Contains(errOut, `"example.com:9000"`) {
			t.Errorf("forward to a named address: exit %d %q, want %d quoting it", code, errOut, ExitUsage)
		}
	})
	t.Run("config table and reload", func(t *testing.T) {
		path := filepath.Join(a.Home, config.ConfigFile)
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteString("\n[[forward]]\nname = \"byname\"\nprotocol = \"/x/echo\"\nlisten = \"127.0.0.1:0\"\npeer = \"bob\"\nlazy = true\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		mustCLI(t, a, "reload")
		peerOf := func() (string, string) {
			for _, l := range listeners(t, a) {
				if l.Name == "byname" {
					return l.Peer, l.PeerName
				}
			}
			t.Fatal("no tunnel named byname in ls")
			return "", ""
		}
		if id, name := peerOf(); id != b.ID || name != "bob" {
			t.Fatalf("config forward goes to %s (%q), want %s (bob)", id, name, b.ID)
		}
		other := harness.NewPeerID(t)
		mustCLI(t, a, "peer", "add", "bob", "/p2p/"+other)
		if id, _ := peerOf(); id != b.ID {
			t.Fatalf("after the name changed, the running forward goes to %s, want %s until reload", id, b.ID)
		}
		mustCLI(t, a, "reload")
		if id, name := peerOf(); id != other || name != "bob" {
			t.Fatalf("after reload, config forward goes to %s (%q), want %s (bob)", id, name, other)
		}
	})
	t.Run("rm", func(t *testing.T) {
		mustCLI(t, a, "peer", "rm", "bob2")
		if _, _, code := a.CLI(t, "peer", "rm", "bob2"); code != ExitUsage {
			t.Errorf("peer rm of an unknown name: exit %d, want %d", code, ExitUsage)
		}
	})
}

// TestPeerNamesWithoutDaemon: peer add, ls and rm edit config.toml when no
// daemon runs; a name that looks like a peer ID is refused with exit 2.
func TestPeerNamesWithoutDaemon(t *testing.T) {
	home := harness.TempHome(t)
	id := harness.NewPeerID(t)
	if _, errOut, code := run(t, "--home", home, "peer", "add", "laptop", id); code != 0 {
		t.Fatalf("peer add: %d %s", code, errOut)
	}
	out, errOut, code := run(t, "--home", home, "peer", "ls")
	if code != 0 || out != "laptop\t"+id+"\n" {
		t.Fatalf("peer ls = %d %q %s", code, out, errOut)
	}
	if _, errOut, code := run(t, "--home", home, "peer", "add", id, id); code != ExitUsage || !strings.Contains(errOut, "looks like a peer ID") {
		t.Errorf("peer add ID ID = %d %q, want %d", code, errOut, ExitUsage)
	}
	if _, errOut, code := run(t, "--home", home, "peer", "rm", "laptop"); code != 0 {
		t.Fatalf("peer rm: %d %s", code, errOut)
	}
	if out, _, _ := run(t, "--home", home, "peer", "ls"); out != "" {
		t.Errorf("peer ls after rm = %q", out)
	}
}
