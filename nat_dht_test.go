//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// TestNATFindByIDAlone is the whole promise of reaching a peer by its ID
// through NATs, with nothing configured but one bootstrap node: the two
// NATed daemons bootstrap the DHT from the public relay node (no --relay
// flag), b's autorelay reserves a slot on the relay it met that way, and
// a forwards to /p2p/<b> knowing nothing else; the DHT returns b's relay
// address and the tunnel comes up.
func TestNATFindByIDAlone(t *testing.T) {
	ns := natLab(t)
	bin := harness.Binary(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	t.Cleanup(cancel)

	listen := []string{"--listen-addr", "/ip4/0.0.0.0/tcp/" + natPort, "--listen-addr", "/ip4/0.0.0.0/udp/" + natPort + "/quic-v1"}
	relay := natStartDaemon(t, ctx, ns["pub"], bin, nil, append([]string{"relay", "--allow-all"}, listen...)...)
	relay.name = "relay"
	relayID := relay.waitReady(t).ID
	boot := []string{"--bootstrap", "/ip4/" + natRelayIP + "/tcp/" + natPort + "/p2p/" + relayID, "--reachability", "private"}
	b := natStartDaemon(t, ctx, ns["b"], bin, nil, append(append([]string{"daemon"}, boot...), listen...)...)
	a := natStartDaemon(t, ctx, ns["a"], bin, nil, append(append([]string{"daemon"}, boot...), listen...)...)
	b.name, a.name = "daemon b", "daemon a"
	bID := b.waitReady(t).ID
	aID := a.waitReady(t).ID
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range []*natDaemon{relay, a, b} {
				t.Logf("%s log:\n%s", d.name, d.logs)
			}
		}
	})

	// b found the relay through the DHT bootstrap alone and reserved on it.
	if c := natCircuitAddr(t, b); !strings.Contains(c, "/p2p/"+relayID+"/p2p-circuit") {
		t.Fatalf("b's relay address %q is not through the relay", c)
	}

	echoFile := filepath.Join(t.TempDir(), "echo.addr")
	echo := natStart(t, ctx, ns["b"], "echo", natHelper("echo", "127.0.0.1:0", echoFile, ""), self, "-test.run=^TestNATHelperProcess$")
	echoAddr := natWaitAddrFile(t, echoFile, echo)
	if out, errOut, code := harness.Run(t, "--home", b.home, "listen", "/x/echo", echoAddr, "--allow", aID); code != 0 {
		t.Fatalf("listen on b exited %d: %s%s", code, out, errOut)
	}

	// a knows b by its ID alone. Retry until the DHT has b: a joins it
	// asynchronously after starting.
	var fwd string
	natWait(t, a.natProc, "a to find b by its ID through the DHT", 30*time.Second, func() bool {
		out, _, code := harness.Run(t, "--home", a.home, "forward", "/x/echo", "127.0.0.1:0", "/p2p/"+bID)
		fwd = strings.TrimSpace(out)
		return code == 0
	})
	c := natClient(t, ctx, ns["a"], harness.HostPort(t, fwd), "found by ID", self)
	c.release(t)
}
