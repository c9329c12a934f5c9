package main

import (
	"fmt"
	"os/exec"
	"testing"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// TestSocksToSeveralPeers is a --socks forward with two egress peers
// (README "Combining options"), through real daemons and curl: each
// request goes to the peer round-robin picks, and both peers' egresses
// dial the destination.
func TestSocksToSeveralPeers(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (Debian package curl): the SOCKS5 tests need a real SOCKS5 client")
	}
	web := newCountingServer(t, "through an egress", nil)
	a := harness.Start(t, harness.Spec{})
	var peers []string
	var egresses []*harness.Daemon
	for range 2 {
		d := harness.Start(t, harness.Spec{Args: []string{"--metrics", "127.0.0.1:0"}})
		if _, errOut, code := d.CLI(t, "listen", "/x/net", "--egress", "--permit", fmt.Sprintf("127.0.0.1:%d", web.port), "--allow", a.ID); code != 0 {
			t.Fatalf("listen --egress: exit %d: %s", code, errOut)
		}
		peers, egresses = append(peers, d.Addresses[0]), append(egresses, d)
	}
	args := append([]string{"forward", "/x/net", "127.0.0.1:0"}, peers...)
	if _, errOut, code := a.CLI(t, append(args, "--socks", "--balance", "round-robin", "--name", "net")...); code != 0 {
		t.Fatalf("forward --socks with two peers: exit %d: %s", code, errOut)
	}
	proxy := forwardAddr(t, a, "net")
	for i := range 4 {
		out, errOut, code := curlSocks(t, proxy, fmt.Sprintf("http://127.0.0.1:%d/", web.port))
		if code != 0 || out != "through an egress" {
			t.Fatalf("curl %d: exit %d, %q %s\nA:\n%s", i, code, out, errOut, a.Logs)
		}
	}
	for _, d := range egresses {
		fam := harness.Scrape(t, d.Metrics)["p2ptun_streams_total"]
		if v, _ := harness.MetricValue(fam, "protocol", "/x/net"); v == 0 {
			t.Errorf("egress %s carried no request: round-robin should have sent it some", d.ID)
		}
	}
	if n := web.conns.Load(); n != 4 {
		t.Errorf("the destination saw %d connections, want 4", n)
	}
}
