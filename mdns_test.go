//go:build linux

package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// TestMDNSFindsALANPeerByID puts two daemons on a LAN of their own (two
// network namespaces joined by a veth pair, with no route anywhere else)
// and shows that, with mDNS on and the DHT off, `p2ptun ping /p2p/ID`
// reaches the other peer knowing nothing but its ID. mDNS runs only here:
// every other test daemon has P2PTUN_NO_MDNS set, so none multicasts on
// the host's network.
func TestMDNSFindsALANPeerByID(t *testing.T) {
	natRequire(t, "")
	ns := natNamespaces(t, "lanA", "lanB")
	// One veth pair, created inside the namespaces: a two-host LAN.
	natCmd(t, "", "ip", "-n", ns["lanA"], "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", ns["lanB"])
	for i, role := range []string{"lanA", "lanB"} {
		natCmd(t, "", "ip", "-n", ns[role], "addr", "add", fmt.Sprintf("10.88.0.%d/24", i+1), "dev", "eth0")
		natCmd(t, "", "ip", "-n", ns[role], "link", "set", "eth0", "up")
	}

	bin := harness.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	mdnsOn := []string{"P2PTUN_NO_MDNS=false"}
	args := []string{"daemon", "--listen-addr", "/ip4/0.0.0.0/tcp/4141", "--dht", "off"}
	a := natStartDaemon(t, ctx, ns["lanA"], bin, mdnsOn, args...)
	b := natStartDaemon(t, ctx, ns["lanB"], bin, mdnsOn, args...)
	a.name, b.name = "daemon A", "daemon B"
	a.waitReady(t)
	bID := b.waitReady(t).ID
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("A log:\n%s\nB log:\n%s", a.logs, b.logs)
		}
	})

	// A was told nothing about B but its ID.
	var path string
	natWait(t, a.natProc, "A to reach B by its ID alone", 30*time.Second, func() bool {
		path = natPingPath(t, a.home, "/p2p/"+bID)
		return path == "direct"
	})
}
