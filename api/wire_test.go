package api

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/spec"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite ../testdata/golden/wire.golden")

// wireGolden is every request and reply body of the API, as `--json`
// prints them: its field names and omitempty rules are what scripts rely
// on (README, "JSON output").
const wireGolden = "wire.golden"

var (
	opened  = time.Date(2026, 11, 24, 23, 40, 0, 123456000, time.UTC)
	expires = time.Date(2026, 11, 25, 0, 40, 0, 123456000, time.UTC)
)

// wireReplies are the replies, each filled from node values through the
// server's conversions: a rename in node must not change them. "full"
// fixtures set every field, "bare" ones only what is always there.
func wireReplies() []struct {
	name string
	v    any
	full bool
} {
	failed := node.TunnelStatus{Name: "ghost", Kind: "forward", Protocol: "/x/web", Line: 12, State: node.TunnelFailed,
		Error: "peer unreachable", ListenerID: 3, Attempts: 2, NextRetry: expires.In(time.FixedZone("CET", 3600)), Err: fmt.Errorf("in-process only")}
	return []struct {
		name string
		v    any
		full bool
	}{
		{"GET /v0/id, id --json", IdentityFrom(node.Identity{
			ID: "12D3KooWSelf", Addresses: []string{"/ip4/127.0.0.1/tcp/4141/p2p/12D3KooWSelf"}, AgentVersion: "p2ptun/v0.1.0",
		}), true},
		{"GET /v0/id, no addresses", IdentityFrom(node.Identity{ID: "12D3KooWSelf", Addresses: []string{}, AgentVersion: "p2ptun/v0.1.0"}), false},
		{"listen and forward replies, an ls entry: forward", ListenerFrom(node.Listener{
			ID: 1, Name: "web", Kind: registry.KindForward, Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/9000",
			TargetAddress: "/p2p/12D3KooWServer", Peer: "12D3KooWServer", Close: func() error { return nil },
		}), false},
		{"an ls entry: listen, every field", namedListener(ListenerFrom(node.Listener{
			ID: 2, Name: "ssh", Kind: registry.KindListen, Protocol: "/x/ssh", ListenAddress: "/p2p/12D3KooWSelf",
			TargetAddress: "/ip4/127.0.0.1/tcp/22", Peer: "12D3KooWPeer", AllowedPeers: []string{"12D3KooWFriend"},
			AllowAll: true, InviteOnly: true, ReportPeerID: true, ProxyProtocol: 2, Balance: "rtt",
			Peers:  []registry.ListenerPeer{{Peer: "12D3KooWOne", Up: true, Error: "disconnected", RTT: 412 * time.Microsecond}},
			Egress: true, Permit: []string{"10.0.0.0/8:22"}, Socks: true,
		})), true},
		{"an ls entry: forward with several peers", ListenerFrom(node.Listener{
			ID: 3, Kind: registry.KindForward, Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/9001",
			TargetAddress: "/p2p/12D3KooWOne,/p2p/12D3KooWTwo", Balance: "failover",
			Peers: []registry.ListenerPeer{
				{Peer: "12D3KooWOne", Up: false, Error: "disconnected"},
				{Peer: "12D3KooWTwo", Up: true, RTT: 1250 * time.Microsecond},
			},
		}), false},
		{"an ls entry: bare", ListenerFrom(node.Listener{Kind: registry.KindListen}), false},
		{"GET /v0/listeners, ls --json: none", ListenerList{Listeners: []Listener{}}, false},
		{"a stream ls entry", func(s Stream) Stream { s.PeerName = "server"; return s }(StreamFrom(node.StreamInfo{
			ID: 7, ListenerID: 1, Kind: registry.KindForward, Protocol: "/x/web", OriginAddress: "/ip4/127.0.0.1/tcp/51234",
			TargetAddress: "/p2p/12D3KooWServer", Peer: "12D3KooWServer", Path: "direct",
			OpenedAt: opened.In(time.FixedZone("CET", 3600)), Setup: time.Millisecond, BytesIn: 5120, BytesOut: 312,
			Destination: "db.internal:5432",
		}, 412*time.Microsecond)), true},
		{"a stream ls entry: bare", StreamFrom(node.StreamInfo{}, 0), false},
		{"GET /v0/streams, stream ls --json: none", StreamList{Streams: []Stream{}}, false},
		{"POST /v0/share, share --json: invite", ShareFrom(node.Share{
			Ticket: "p2ptun1eyacicab", Peer: "12D3KooWServer", Protocol: "/x/web",
			Addresses: []string{"/ip4/203.0.113.7/tcp/4141/p2p/12D3KooWServer"}, Expires: expires,
		}), true},
		{"POST /v0/share: plain ticket", ShareFrom(node.Share{Ticket: "p2ptun1eyacicab", Peer: "12D3KooWServer", Protocol: "/x/web", Addresses: []string{}}), false},
		{"POST /v0/ping, ping --json", PingReply{Peer: "12D3KooWServer", Results: []PingResult{
			PingResultFrom(node.PingResult{RTT: 412 * time.Microsecond, Path: "direct"}),
		}}, true},
		{"close replies, close --json, stream close --json", Closed{Closed: 2}, true},
		{"access replies, access ls --json", AccessListFrom(node.AccessList{Allow: []string{"12D3KooWFriend"}, Deny: []string{"12D3KooWFoe"}}), true},
		{"access replies: open policy", AccessListFrom(node.AccessList{Allow: []string{}, Deny: []string{}}), false},
		{"a tunnel status, every field", tunnelStatusFrom(failed), true},
		{"GET /v0/status, wait --json", Status{Ready: true, Tunnels: TunnelStatusesFrom([]node.TunnelStatus{
			{Name: "web", Kind: "forward", Protocol: "/x/web", Line: 3, State: node.TunnelUp, ListenerID: 1},
			{Name: "listen /x/ssh", Kind: "listen", Protocol: "/x/ssh", State: node.TunnelStarting},
			failed,
			{Name: "old", Kind: "listen", Protocol: "/x/old", Line: 20, State: node.TunnelClosed},
		})}, true},
		{"GET /v0/overview, status --json", namedOverview(OverviewFrom(true, []node.TunnelStatus{
			{Name: "web", Kind: "forward", Protocol: "/x/web", Line: 3, State: node.TunnelUp, ListenerID: 1},
			failed,
			{Name: "bad", Kind: "listen", Protocol: "/x/bad", Line: 20, State: node.TunnelFailed, Error: "invalid", Attempts: 1},
		}, []node.Listener{
			{ID: 4, Kind: registry.KindListen, Protocol: "/x/ssh", ListenAddress: "/p2p/12D3KooWSelf", TargetAddress: "/ip4/127.0.0.1/tcp/22",
				AllowedPeers: []string{"12D3KooWFriend", "12D3KooWOther"}},
			{ID: 1, Name: "web", Kind: registry.KindForward, Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/9000", TargetAddress: "/p2p/12D3KooWServer",
				Peer: "12D3KooWServer"},
		}, []node.StreamInfo{
			{ID: 7, ListenerID: 1, BytesIn: 5120, BytesOut: 312},
			{ID: 8, ListenerID: 1, BytesIn: 10, BytesOut: 20},
		}, []node.PeerState{
			{Peer: "12D3KooWRelayed", Connected: true, Path: "relayed via 12D3KooWRelay", RTT: 30 * time.Millisecond},
			{Peer: "12D3KooWServer", Connected: true, Path: "direct", RTT: 412 * time.Microsecond, Tunnel: true},
		})), true},
		{"GET /v0/overview: nothing running", OverviewFrom(false, nil, nil, nil, nil), false},
		{"GET /v0/status: no config tunnels", Status{Tunnels: TunnelStatusesFrom(nil)}, false},
		{"POST /v0/reload, reload --json", ReloadResultFrom(ReloadReply{
			ApplyResult: node.ApplyResult{Added: []string{"new"}, Removed: []string{"two"}, Unchanged: []string{"one"},
				Restarted: []string{"changed"}, Failed: []node.TunnelStatus{failed}},
			NeedsRestart: []string{"network"},
		}), true},
		{"POST /v0/reload: nothing changed", ReloadResultFrom(ReloadReply{}), false},
		{"an event, every field", func(e Event) Event { e.PeerName = "server"; return e }(EventFrom(node.Event{
			Time: opened, Type: node.EventStreamClose, TunnelID: 1, Name: "web", Kind: "forward", Protocol: "/x/web",
			ListenAddress: "/ip4/127.0.0.1/tcp/9000", TargetAddress: "/p2p/12D3KooWServer", StreamID: 7,
			OriginAddress: "/ip4/127.0.0.1/tcp/51234", Peer: "12D3KooWServer", Path: "direct", BytesIn: 5120, BytesOut: 312,
			SetupMillis: 1.5, Millis: 250.25, Destination: "db.internal:5432", Reason: "reset", Error: "stream reset",
		})), true},
		{"GET and POST /v0/peers, peer ls --json", PeerNameList{Peers: []PeerName{
			{Name: "laptop", Addr: "/p2p/12D3KooWLaptop", Peer: "12D3KooWLaptop"},
		}}, true},
		{"GET /v0/peers: none", PeerNamesFrom(nil), false},
		{"an event: bare", EventFrom(node.Event{Time: opened, Type: node.EventTunnelUp}), false},
		{"an error reply", errorBody{Error: "no listener matched", Code: "not_found"}, true},
	}
}

// namedOverview is o as Named makes it when 12D3KooWServer is named
// "server" and 12D3KooWFriend "friend".
func namedOverview(o Overview) Overview {
	names := map[string]string{"12D3KooWServer": "server", "12D3KooWFriend": "friend"}
	for i := range o.Tunnels {
		for j, p := range o.Tunnels[i].Peers {
			o.Tunnels[i].Peers[j].PeerName = names[p.Peer]
		}
	}
	for i, p := range o.Peers {
		o.Peers[i].PeerName = names[p.Peer]
	}
	return o
}

// namedListener is l as Named makes it for peers that all have names.
func namedListener(l Listener) Listener {
	l.PeerName = "peer"
	l.AllowedPeerNames = map[string]string{"12D3KooWFriend": "friend"}
	for i := range l.Peers {
		l.Peers[i].PeerName = "one"
	}
	return l
}

// wireRequests are the request bodies, full and bare.
func wireRequests() []struct {
	name string
	v    any
	full bool
} {
	return []struct {
		name string
		v    any
		full bool
	}{
		{"POST /v0/listeners/listen", fullListen, true},
		{"POST /v0/listeners/listen: bare", ListenRequest{Protocol: "/x/ssh", Target: "/ip4/127.0.0.1/tcp/22"}, false},
		{"POST /v0/listeners/forward", fullForward, true},
		{"POST /v0/listeners/forward: bare", ForwardRequest{Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/9000", Peer: "12D3KooWServer"}, false},
		{"POST /v0/listeners/close", CloseRequest{Protocol: "/x/web"}, false},
		{"POST /v0/listeners/close: every field", fullClose, true},
		{"POST /v0/pipe", fullPipe, true},
		{"POST /v0/pipe: bare", PipeRequest{Peer: "12D3KooWServer", Protocol: "/x/ssh"}, false},
		{"POST /v0/share", fullShare, true},
		{"POST /v0/share: bare", ShareRequest{Protocol: "/x/web"}, false},
		{"POST /v0/ping", PingRequest{Peer: "12D3KooWServer", Count: 3}, true},
		{"POST /v0/streams/close", StreamCloseRequest{ID: "7"}, false},
		{"POST /v0/streams/close: all", StreamCloseRequest{All: true}, false},
		{"POST /v0/access/{allow,deny,revoke}", AccessRequest{Peer: "12D3KooWFriend"}, true},
		{"POST /v0/peers: peer add", PeerNameRequest{Name: "laptop", Addr: "/p2p/12D3KooWLaptop"}, true},
		{"POST /v0/peers: peer rm", PeerNameRequest{Name: "laptop"}, false},
	}
}

// The full requests give every field a value of its own, so that a
// conversion that drops or swaps one shows.
var (
	fullListen = ListenRequest{
		Name: "ssh", Protocol: "/x/ssh", Target: "/ip4/127.0.0.1/tcp/22", Allow: []string{"12D3KooWFriend"},
		AllowAll: true, ReportPeerID: true, AllowCustomProtocol: true, InviteOnly: true, Save: true,
		ProxyProtocol: "v2",
		Egress:        true, Permit: []string{"10.0.0.0/8:22", "db.internal:5432"},
	}
	fullForward = ForwardRequest{
		Name: "web", Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/9000", Peer: "12D3KooWServer",
		AllowCustomProtocol: true, Lazy: true, AllowLimited: true, Save: true,
		Addrs: []string{"/ip4/203.0.113.7/tcp/4141"}, Invite: []byte("secret"),
		Peers: []string{"12D3KooWOne", "12D3KooWTwo"}, Balance: "rtt",
		Socks: true, Gateway: true,
	}
	fullClose = CloseRequest{All: true, Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/9000", TargetAddress: "/p2p/12D3KooWServer"}
	fullPipe  = PipeRequest{
		Peer: "12D3KooWServer", Protocol: "/x/ssh", AllowCustomProtocol: true, AllowLimited: true,
		Addrs: []string{"/ip4/203.0.113.7/tcp/4141"},
	}
	fullShare = ShareRequest{Protocol: "/x/web", Invite: true, TTL: config.D(30 * time.Minute)}
)

// TestWireGolden pins the JSON of every API body (and so of every --json
// document) in testdata/golden/wire.golden. Regenerate with -update, and
// only for a change to the wire that README's "JSON output" describes.
func TestWireGolden(t *testing.T) {
	var b bytes.Buffer
	for _, section := range []struct {
		title string
		docs  []struct {
			name string
			v    any
			full bool
		}
	}{{"replies", wireReplies()}, {"requests", wireRequests()}} {
		fmt.Fprintf(&b, "# %s\n", section.title)
		for _, d := range section.docs {
			if d.full {
				allFieldsSet(t, d.name, d.v)
			}
			fmt.Fprintf(&b, "## %s (%T)\n", d.name, d.v)
			if err := WriteJSON(&b, d.v, "  "); err != nil { // as --json prints
				t.Fatalf("%s: %v", d.name, err)
			}
		}
	}
	path := filepath.Join("..", "testdata", "golden", wireGolden)
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./api -run TestWireGolden -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("the API's JSON differs from %s: a wire type or its conversion changed.\n--- got ---\n%s--- want ---\n%s", path, b.Bytes(), want)
	}
}

// TestWireRequestsReachNode checks that every field of a request arrives
// in the node's request (a tunnel's: the spec.Request it is parsed from):
// each full request's values (all distinct) must all reach it, and leave
// none of its fields unset (a spec.Request, which serves every kind of
// tunnel, exactly as many as the wire type has).
func TestWireRequestsReachNode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		wire, to any
	}{
		{"listen", fullListen, fullListen.toRequest()},
		{"forward", fullForward, fullForward.toRequest()},
		{"close", fullClose, fullClose.ToNode()},
		{"pipe", fullPipe, fullPipe.toRequest()},
		{"share", fullShare, fullShare.ToNode()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allFieldsSet(t, "wire", tc.wire)
			w, n := reflect.ValueOf(tc.wire), reflect.ValueOf(tc.to)
			if _, ok := tc.to.(spec.Request); ok {
				set := 0
				for i := range n.NumField() {
					if !n.Field(i).IsZero() {
						set++
					}
				}
				if set != w.NumField() {
					t.Errorf("%T has %d fields, %d of %T are set: a field is missing on one side", tc.wire, w.NumField(), set, tc.to)
				}
			} else {
				allFieldsSet(t, "node", tc.to)
				if w.NumField() != n.NumField() {
					t.Errorf("%T has %d fields, %T %d: a field is missing on one side", tc.wire, w.NumField(), tc.to, n.NumField())
				}
			}
			for i := range w.NumField() {
				if w.Field(i).Kind() == reflect.Bool {
					continue // all true: checked by allFieldsSet
				}
				found := false
				for j := range n.NumField() {
					if reflect.DeepEqual(w.Field(i).Interface(), n.Field(j).Interface()) {
						found = true
					}
				}
				if !found {
					t.Errorf("%T.%s = %v reaches no field of %T", tc.wire, w.Type().Field(i).Name, w.Field(i), tc.to)
				}
			}
		})
	}
}

// allFieldsSet fails unless every exported field of the struct v has a
// value, so that a "full" fixture, or a conversion of one, drops nothing.
func allFieldsSet(t *testing.T, name string, v any) {
	t.Helper()
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		if f := rv.Type().Field(i); f.IsExported() && rv.Field(i).IsZero() {
			t.Errorf("%s: %T.%s is not set", name, v, f.Name)
		}
	}
}

// TestWireConstants pins the values node uses for tunnel states and
// event types to the API's, which scripts compare against.
func TestWireConstants(t *testing.T) {
	for _, c := range [][2]string{
		{node.TunnelStarting, TunnelStarting}, {node.TunnelUp, TunnelUp},
		{node.TunnelFailed, TunnelFailed}, {node.TunnelClosed, TunnelClosed},
		{node.EventTunnelUp, EventTunnelUp}, {node.EventTunnelDown, EventTunnelDown},
		{node.EventTunnelFailed, EventTunnelFailed}, {node.EventStreamOpen, EventStreamOpen},
		{node.EventStreamClose, EventStreamClose}, {node.EventStreamFailed, EventStreamFailed},
		{node.EventPeerConnected, EventPeerConnected}, {node.EventPeerDisconnected, EventPeerDisconnected},
		{node.EventReload, EventReload}, {node.EventLost, EventLost},
		{node.EventRelayHeld, EventRelayHeld}, {node.EventRelayLost, EventRelayLost},
		{node.EventHolePunch, EventHolePunch},
		{node.EventForwardPeerDown, EventForwardPeerDown}, {node.EventForwardPeerUp, EventForwardPeerUp},
	} {
		if c[0] != c[1] {
			t.Errorf("node says %q where the API says %q", c[0], c[1])
		}
	}
}

// TestForwardRequestOfInvertsToRequest: the cli builds a forward request
// from a spec.Request (arguments or a ticket) with ForwardRequestOf; a
// field it dropped would never reach the daemon.
func TestForwardRequestOfInvertsToRequest(t *testing.T) {
	if got := ForwardRequestOf(fullForward.toRequest()); !reflect.DeepEqual(got, fullForward) {
		t.Fatalf("ForwardRequestOf(toRequest(r)) = %+v, want %+v", got, fullForward)
	}
}
