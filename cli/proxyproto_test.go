package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/pires/go-proxyproto"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

// swarmAddr is the host:port of a daemon's first address (…/p2p/ID).
func swarmAddr(t *testing.T, d *harness.Daemon) string {
	t.Helper()
	transport, _ := peer.SplitAddr(ma.StringCast(d.Addresses[0]))
	a, err := manet.ToNetAddr(transport)
	if err != nil {
		t.Fatal(err)
	}
	return a.String()
}

// forwardTo makes a forward proto on a to the peer at peerAddr and
// returns its host:port.
func forwardTo(t *testing.T, a *harness.Daemon, peerAddr, proto string) string {
	t.Helper()
	out, errOut, code := a.CLI(t, "forward", proto, "127.0.0.1:0", peerAddr)
	if code != 0 {
		t.Fatalf("forward: %d %s", code, errOut)
	}
	return harness.HostPort(t, out)
}

// listenProxied makes b listen on proto for a with --proxy-protocol v, in
// front of a ServeProxied target, and returns what the target reports.
func listenProxied(t *testing.T, a, b *harness.Daemon, proto, v string) <-chan testnet.Proxied {
	t.Helper()
	target, got := testnet.ServeProxied(t)
	if _, errOut, code := b.CLI(t, "listen", proto, target, "--allow", a.ID, "--proxy-protocol", v); code != 0 {
		t.Fatalf("listen: %d %s", code, errOut)
	}
	return got
}

// throughProxied sends msg through the forward at addr to a target
// behind a PROXY header, checks the echo, and returns what the target was
// told.
func throughProxied(t *testing.T, addr string, got <-chan testnet.Proxied, msg string) *proxyproto.Header {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return testnet.EchoProxied(t, c, got, msg)
}

// checkProxyHeader checks a header from a's daemon to b's: a PROXY
// command, the libp2p connection's addresses (a dials b from its own
// port: the swarm reuses it), and in v2 a's peer ID in TLV 0xE0.
func checkProxyHeader(t *testing.T, h *proxyproto.Header, version byte, a, b *harness.Daemon) {
	t.Helper()
	if h.Version != version || !h.Command.IsProxy() || h.TransportProtocol != proxyproto.TCPv4 {
		t.Errorf("header version %d, command %#x, transport %#x; want %d, PROXY, TCP over IPv4", h.Version, h.Command, h.TransportProtocol, version)
	}
	if src, dst := swarmAddr(t, a), swarmAddr(t, b); h.SourceAddr.String() != src || h.DestinationAddr.String() != dst {
		t.Errorf("header says %s -> %s, want the peers' connection %s -> %s", h.SourceAddr, h.DestinationAddr, src, dst)
	}
	tlvs, err := h.TLVs()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tlv := range tlvs {
		if tlv.Type == 0xE0 {
			ids = append(ids, string(tlv.Value))
		}
	}
	switch {
	case version == 1 && len(tlvs) != 0:
		t.Errorf("a v1 header with TLVs %+v", tlvs)
	case version == 2 && (len(ids) != 1 || ids[0] != a.ID):
		t.Errorf("TLV 0xE0 holds %q, want the peer ID %s", ids, a.ID)
	}
}

// lsProxyProtocol is the ProxyProtocol of d's listener for proto in
// `ls --json`.
func lsProxyProtocol(t *testing.T, d *harness.Daemon, proto string) string {
	t.Helper()
	for _, l := range lsJSON(t, d) {
		if l.Protocol == proto {
			return l.ProxyProtocol
		}
	}
	t.Fatalf("no listener for %s", proto)
	return ""
}

func TestProxyProtocolThroughDaemons(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	for _, v := range []string{"v1", "v2"} {
		t.Run(v, func(t *testing.T) {
			proto := "/x/pp-" + v
			got := listenProxied(t, a, b, proto, v)
			if pp := lsProxyProtocol(t, b, proto); pp != v {
				t.Errorf("ls --json: ProxyProtocol %q, want %q", pp, v)
			}
			fwd := forwardTo(t, a, b.Addresses[0], proto)
			checkProxyHeader(t, throughProxied(t, fwd, got, "hello "+v), v[1]-'0', a, b)
		})
	}
}

// TestProxyProtocolConfigAndReload: proxy_protocol in a [[listen]] table
// works at boot, and a reload that changes it restarts the listener with
// the new version.
func TestProxyProtocolConfigAndReload(t *testing.T) {
	a := startDaemon(t)
	target, got := testnet.ServeProxied(t)
	home, _ := initHome(t)
	appendConfig(t, home, "\n[[listen]]\nname = \"pp\"\nprotocol = \"/x/pp\"\ntarget = \""+target+"\"\nallow = [\""+a.ID+"\"]\nproxy_protocol = \"v1\"\n")
	b := startIn(t, home, "daemon")
	if out, errOut, code := b.CLI(t, "wait", "--timeout", "20s"); code != 0 {
		t.Fatalf("wait = %d %q %q", code, out, errOut)
	}
	if pp := lsProxyProtocol(t, b, "/x/pp"); pp != "v1" {
		t.Fatalf("ls --json: ProxyProtocol %q, want v1", pp)
	}
	fwd := forwardTo(t, a, b.Addresses[0], "/x/pp")
	checkProxyHeader(t, throughProxied(t, fwd, got, "boot"), 1, a, b)

	path := filepath.Join(home, "config.toml")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(text), `proxy_protocol = "v1"`, `proxy_protocol = "v2"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := b.CLI(t, "reload"); code != 0 || !strings.Contains(out, "pp") {
		t.Fatalf("reload = %d %q %q, want pp restarted", code, out, errOut)
	}
	if pp := lsProxyProtocol(t, b, "/x/pp"); pp != "v2" {
		t.Fatalf("after reload, ls --json: ProxyProtocol %q, want v2", pp)
	}
	checkProxyHeader(t, throughProxied(t, fwd, got, "reloaded"), 2, a, b)

	// A bad value fails the reload and changes nothing.
	if err := os.WriteFile(path, []byte(strings.Replace(string(text), `proxy_protocol = "v1"`, `proxy_protocol = "v9"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := b.CLI(t, "reload"); code != ExitConfig || strings.Count(errOut, "\n") != 1 ||
		!strings.Contains(errOut, `config.toml:`) || !strings.Contains(errOut, `PROXY protocol "v9": use v1`) {
		t.Fatalf("reload of a bad proxy_protocol = %d %q; want exit 4, one line naming the line", code, errOut)
	}
	checkProxyHeader(t, throughProxied(t, fwd, got, "kept"), 2, a, b)

	// listen --save writes the key.
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := b.CLI(t, "listen", "/x/pp-saved", target, "--allow", a.ID, "--proxy-protocol", "v2", "--save"); code != 0 {
		t.Fatalf("listen --save: %d %s", code, errOut)
	}
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(path, saved)
	if err != nil || len(c.Listen) != 2 || c.Listen[1].Protocol != "/x/pp-saved" || c.Listen[1].Spec.ProxyProtocol != 2 {
		t.Fatalf("saved config: %+v, %v; want a second [[listen]] with proxy_protocol v2", c.Listen, err)
	}
}

func TestProxyProtocolBadInput(t *testing.T) {
	d := startDaemon(t)
	target := echoTarget(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown version", []string{"--proxy-protocol", "v3"}, `PROXY protocol "v3": use v1 (addresses only) or v2 (addresses and the peer ID)`},
		{"bare number", []string{"--proxy-protocol", "2"}, `PROXY protocol "2"`},
		{"with --report-peer-id", []string{"--proxy-protocol", "v2", "--report-peer-id"}, "both go to the target first: choose one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := d.CLI(t, append([]string{"listen", "/x/web", target, "--allow-all"}, tc.args...)...)
			if code != ExitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, ExitUsage, tc.want)
			}
			checkOneLineError(t, out, errOut)
		})
	}
	if out, _, _ := d.CLI(t, "ls"); out != "" {
		t.Fatalf("listeners left behind by refused commands:\n%s", out)
	}
}

// TestProxyProtocolRelayed: a caller through a relay has no address to
// tell, and the relay's must not pass for it: v1 says UNKNOWN, v2 LOCAL
// with no addresses, and still the peer ID.
func TestProxyProtocolRelayed(t *testing.T) {
	r := startCommand(t, "relay", "--allow-all")
	b := startDaemon(t, "--relay", r.Addresses[0], "--reachability", "private")
	a := startDaemon(t)
	circuit := circuitAddr(t, b)
	for _, v := range []string{"v1", "v2"} {
		t.Run(v, func(t *testing.T) {
			proto := "/x/pp-relayed-" + v
			got := listenProxied(t, a, b, proto, v)
			h := throughProxied(t, forwardTo(t, a, circuit, proto), got, "via relay")
			if !h.Command.IsLocal() || h.TransportProtocol != proxyproto.UNSPEC || h.SourceAddr != nil || h.DestinationAddr != nil {
				t.Errorf("header %+v; want no addresses (v1 UNKNOWN, v2 LOCAL)", h)
			}
			tlvs, err := h.TLVs()
			if err != nil {
				t.Fatal(err)
			}
			if v == "v2" && (len(tlvs) != 1 || tlvs[0].Type != 0xE0 || string(tlvs[0].Value) != a.ID) {
				t.Errorf("TLVs %+v; want 0xE0 = %s", tlvs, a.ID)
			}
		})
	}
}
