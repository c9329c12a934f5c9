package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/internal/harness"
)

// The text of `status` and its --json, for an overview with a tunnel in
// each state and two peers.
func TestStatusGolden(t *testing.T) {
	now := time.Date(2026, 11, 24, 23, 40, 0, 0, time.UTC)
	ov := api.Overview{Ready: true, Tunnels: []api.TunnelOverview{
		{Name: "web", Kind: "forward", Protocol: "/x/web", Config: true, Line: 3, State: api.OverviewUp, ID: 1,
			ListenAddress: "/ip4/127.0.0.1/tcp/9000", TargetAddress: "/p2p/12D3KooWServer", Streams: 2, BytesIn: 3 << 20, BytesOut: 1536,
			Peers: []api.TunnelPeer{{Peer: "12D3KooWServer", PeerName: "server"}}},
		{Name: "db", Kind: "forward", Protocol: "/x/db", Config: true, Line: 9, State: api.OverviewRetrying,
			Error: "peer 12D3KooWServer unreachable", Attempts: 3, NextRetry: now.Add(4 * time.Second)},
		{Name: "bad", Kind: "listen", Protocol: "/x/bad", Config: true, Line: 15, State: api.OverviewFailed, Error: "protocol is taken", Attempts: 1},
		{Name: "old", Kind: "listen", Protocol: "/x/old", Config: true, Line: 20, State: api.OverviewClosed},
		{Name: "listen /x/ssh", Kind: "listen", Protocol: "/x/ssh", State: api.OverviewUp, ID: 4,
			ListenAddress: "/p2p/12D3KooWSelf", TargetAddress: "/ip4/127.0.0.1/tcp/22",
			Peers: []api.TunnelPeer{{Peer: "12D3KooWFriend", PeerName: "friend"}, {Peer: "12D3KooWOther"}}},
	}, Peers: []api.PeerStatus{
		{Peer: "12D3KooWRelayed", Connected: true, Path: "relayed via 12D3KooWRelay", RTTMillis: 31.25},
		{Peer: "12D3KooWServer", PeerName: "server", Connected: true, Path: "direct", RTTMillis: 0.412, Tunnel: true},
	}}
	var out strings.Builder
	out.WriteString("$ p2ptun status\n" + renderStatus(ov, now))
	out.WriteString("$ p2ptun status  # nothing running, still starting\n" + renderStatus(api.Overview{}, now))
	var js bytes.Buffer
	if err := api.WriteJSON(&js, ov, "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteString("$ p2ptun status --json\n" + js.String())
	golden(t, "status.golden", out.String())
}

// statusOf is d's `status --json`.
func statusOf(t *testing.T, d *harness.Daemon) api.Overview {
	t.Helper()
	return jsonOut[api.Overview](t, d, "status", "--json")
}

// jsonOut runs a command on d that prints a JSON document of type T,
// and returns the document.
func jsonOut[T any](t *testing.T, d *harness.Daemon, args ...string) T {
	t.Helper()
	var v T
	out, errOut, code := d.CLI(t, args...)
	if code != 0 {
		t.Fatalf("%v: %d %s", args, code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return v
}

func tunnelNamed(ov api.Overview, name string) (api.TunnelOverview, bool) {
	for _, t := range ov.Tunnels {
		if t.Name == name {
			return t, true
		}
	}
	return api.TunnelOverview{}, false
}

// A config tunnel that cannot start (its local port is taken) shows as
// retrying with its error and next attempt, then as up once it can; a
// runtime tunnel shows with its live stream and bytes; the peer shows
// with its path and RTT.
func TestStatusThroughDaemons(t *testing.T) {
	b := startDaemon(t)
	aHome, aID := initHome(t)
	if _, errOut, code := b.CLI(t, "listen", "/x/echo", echoTarget(t), "--allow", aID); code != 0 {
		t.Fatal(errOut)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	appendConfig(t, aHome, forwardTable("web", busy.Addr().String(), b.Addresses[0]))
	a := startIn(t, aHome, "daemon")

	before := time.Now()
	web, ok := tunnelNamed(statusOf(t, a), "web")
	if !ok || web.State != api.OverviewRetrying || !web.Config || web.Line == 0 || web.Error == "" ||
		web.Attempts < 1 || web.NextRetry.Before(before.Add(-time.Minute)) || web.ID != 0 {
		t.Fatalf("web = %+v (found %v); want a config tunnel retrying, with its error and next attempt", web, ok)
	}
	out, errOut, code := a.CLI(t, "status")
	if code != 0 || !strings.Contains(out, "web: (config line ") || !strings.Contains(out, "failed, next in ") {
		t.Fatalf("status = %d %q %q; want web's error and next attempt", code, out, errOut)
	}

	// A runtime forward, one live stream through it, and a ping for the RTT.
	c := tunnelled(t, a, b, "/x/rt")
	harness.Echoes(t, c, "ping")
	if out, errOut, code := a.CLI(t, "ping", "-n", "1", b.Addresses[0]); code != 0 {
		t.Fatalf("ping: %d %q %q", code, out, errOut)
	}
	var rt api.TunnelOverview
	waitUntil(t, "the runtime forward's stream and bytes in status", func() bool {
		for _, x := range statusOf(t, a).Tunnels {
			if !x.Config && x.Protocol == "/x/rt" {
				rt = x
			}
		}
		return rt.Streams == 1 && rt.BytesIn == 4 && rt.BytesOut == 4
	})
	if rt.State != api.OverviewUp || rt.Kind != "forward" || rt.Name != "forward /x/rt "+rt.ListenAddress || rt.ID == 0 {
		t.Errorf("runtime forward = %+v; want up, named by kind, protocol and address", rt)
	}
	var peer api.PeerStatus
	for _, p := range statusOf(t, a).Peers {
		if p.Peer == b.ID {
			peer = p
		}
	}
	if !peer.Connected || peer.Path != "direct" || peer.RTTMillis <= 0 || !peer.Tunnel {
		t.Errorf("peer b = %+v; want connected, direct, an RTT, named by a tunnel", peer)
	}

	// Once the port is free, the next attempt brings web up.
	busy.Close()
	harness.Until(t, time.Minute, "web up", func() bool {
		web, _ = tunnelNamed(statusOf(t, a), "web")
		return web.State == api.OverviewUp
	})
	if web.ID == 0 || web.Error != "" || !web.NextRetry.IsZero() || web.ListenAddress == "" {
		t.Errorf("web once up = %+v; want its listener, no error, no retry", web)
	}
	out, _, _ = a.CLI(t, "status")
	if strings.Contains(out, "web: ") {
		t.Errorf("status still explains web once up:\n%s", out)
	}
	// ls names it in its last column; an unnamed tunnel has "-" there.
	out, _, _ = a.CLI(t, "ls")
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if want := map[string]string{"/x/echo": "web", "/x/rt": "-"}[f[0]]; want != "" && f[len(f)-1] != want {
			t.Errorf("ls line %q: want the name %s last", line, want)
		}
	}
	if !strings.Contains(out, " web\n") || !strings.Contains(out, "/x/rt") {
		t.Errorf("ls does not name web:\n%s", out)
	}
}

func TestStatusWithoutADaemon(t *testing.T) {
	_, errOut, code := run(t, "--home", harness.TempHome(t), "status")
	if code != ExitDaemonNotRunning || !strings.Contains(errOut, "p2ptun daemon") {
		t.Fatalf("status with no daemon: %d %q", code, errOut)
	}
	if _, _, code := run(t, "--home", harness.TempHome(t), "status", "extra"); code != ExitUsage {
		t.Fatalf("status extra: exit %d, want %d", code, ExitUsage)
	}
}
