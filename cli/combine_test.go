package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/spec"
	"github.com/p2ptun/p2ptun/ticket"
)

// TestRefusedCombinations runs each combination of options that spec
// refuses (README "Combining options"): from the command line it exits 2
// with one line saying what to do and registers nothing; from a config
// table, `config check` names the table's line; through the API, the error
// is ErrUsage.
func TestRefusedCombinations(t *testing.T) {
	d := startDaemon(t)
	id, another := harness.NewPeer(t), harness.NewPeerID(t)
	other := id.String()
	const udp = "/ip4/127.0.0.1/udp/53"
	tk, err := ticket.Ticket{Peer: id, Protocol: "/x/dns", Secret: make([]byte, ticket.MinSecretLen)}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, want string
		args       []string
		table      string              // the same as a config table; "" if a table cannot say it
		listen     *api.ListenRequest  // the same through the API, or
		forward    *api.ForwardRequest // this
	}{
		{name: "udp target, proxy protocol", want: "drop --proxy-protocol",
			args:   []string{"listen", "/x/dns", udp, "--allow-all", "--proxy-protocol", "v2"},
			table:  "[[listen]]\nprotocol = \"/x/dns\"\ntarget = \"" + udp + "\"\nallow_all = true\nproxy_protocol = \"v2\"\n",
			listen: &api.ListenRequest{Protocol: "/x/dns", Target: udp, AllowAll: true, ProxyProtocol: "v2"}},
		{name: "udp target, report peer ID", want: "drop --report-peer-id",
			args:   []string{"listen", "/x/dns", udp, "--allow-all", "--report-peer-id"},
			table:  "[[listen]]\nprotocol = \"/x/dns\"\ntarget = \"" + udp + "\"\nallow_all = true\nreport_peer_id = true\n",
			listen: &api.ListenRequest{Protocol: "/x/dns", Target: udp, AllowAll: true, ReportPeerID: true}},
		{name: "udp target, egress", want: "drop the target",
			args:   []string{"listen", "/x/dns", udp, "--allow-all", "--egress", "--permit", "127.0.0.1:53"},
			table:  "[[listen]]\nprotocol = \"/x/dns\"\ntarget = \"" + udp + "\"\nallow_all = true\negress = true\npermit = [\"127.0.0.1:53\"]\n",
			listen: &api.ListenRequest{Protocol: "/x/dns", Target: udp, AllowAll: true, Egress: true, Permit: []string{"127.0.0.1:53"}}},
		{name: "udp target, permit", want: "only to an --egress listener",
			args:   []string{"listen", "/x/dns", udp, "--allow-all", "--permit", "127.0.0.1:53"},
			table:  "[[listen]]\nprotocol = \"/x/dns\"\ntarget = \"" + udp + "\"\nallow_all = true\npermit = [\"127.0.0.1:53\"]\n",
			listen: &api.ListenRequest{Protocol: "/x/dns", Target: udp, AllowAll: true, Permit: []string{"127.0.0.1:53"}}},
		{name: "egress, proxy protocol", want: "drop --proxy-protocol",
			args:   []string{"listen", "/x/net", "--allow-all", "--egress", "--permit", "127.0.0.1:22", "--proxy-protocol", "v1"},
			table:  "[[listen]]\nprotocol = \"/x/net\"\nallow_all = true\negress = true\npermit = [\"127.0.0.1:22\"]\nproxy_protocol = \"v1\"\n",
			listen: &api.ListenRequest{Protocol: "/x/net", AllowAll: true, Egress: true, Permit: []string{"127.0.0.1:22"}, ProxyProtocol: "v1"}},
		{name: "egress, report peer ID", want: "--report-peer-id does not apply",
			args:   []string{"listen", "/x/net", "--allow-all", "--egress", "--permit", "127.0.0.1:22", "--report-peer-id"},
			table:  "[[listen]]\nprotocol = \"/x/net\"\nallow_all = true\negress = true\npermit = [\"127.0.0.1:22\"]\nreport_peer_id = true\n",
			listen: &api.ListenRequest{Protocol: "/x/net", AllowAll: true, Egress: true, Permit: []string{"127.0.0.1:22"}, ReportPeerID: true}},
		{name: "udp forward, socks", want: "or drop --socks",
			args:    []string{"forward", "/x/dns", "/ip4/127.0.0.1/udp/0", other, "--socks", "--lazy"},
			table:   "[[forward]]\nprotocol = \"/x/dns\"\nlisten = \"/ip4/127.0.0.1/udp/0\"\npeer = \"" + other + "\"\nsocks = true\n",
			forward: &api.ForwardRequest{Protocol: "/x/dns", ListenAddress: "/ip4/127.0.0.1/udp/0", Peer: other, Socks: true, Lazy: true}},
		{name: "udp forward to several peers, socks", want: "or drop --socks",
			args:    []string{"forward", "/x/dns", "/ip4/127.0.0.1/udp/0", other, another, "--socks", "--lazy"},
			table:   "[[forward]]\nprotocol = \"/x/dns\"\nlisten = \"/ip4/127.0.0.1/udp/0\"\npeers = [\"" + other + "\", \"" + another + "\"]\nsocks = true\n",
			forward: &api.ForwardRequest{Protocol: "/x/dns", ListenAddress: "/ip4/127.0.0.1/udp/0", Peers: []string{other, another}, Socks: true, Lazy: true}},
		{name: "several peers, invite", want: "an invite is for one peer",
			forward: &api.ForwardRequest{Protocol: "/x/web", ListenAddress: "127.0.0.1:0", Peers: []string{other, another}, Invite: make([]byte, ticket.MinSecretLen)}},
		{name: "ticket and another peer", want: "with a ticket, forward takes TICKET LISTEN-ADDR",
			args: []string{"forward", tk, "/ip4/127.0.0.1/udp/0", another}},
		{name: "ticket, balance", want: "balancing needs two or more peers",
			args: []string{"forward", tk, "/ip4/127.0.0.1/udp/0", "--balance", "rtt"}},
	}
	client := api.NewClient(d.API)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.args != nil {
				out, errOut, code := d.CLI(t, tc.args...)
				if code != ExitUsage || !strings.Contains(errOut, tc.want) {
					t.Errorf("%v = exit %d %q, want exit %d saying %q", tc.args, code, errOut, ExitUsage, tc.want)
				}
				checkOneLineError(t, out, errOut)
			}
			if tc.table != "" {
				home, _ := initHome(t)
				b, err := os.ReadFile(filepath.Join(home, "config.toml"))
				if err != nil {
					t.Fatal(err)
				}
				line := fmt.Sprintf("config.toml:%d", strings.Count(string(b), "\n")+2)
				appendConfig(t, home, "\n"+tc.table)
				out, errOut, code := run(t, "--home", home, "config", "check")
				if code != ExitConfig || !strings.Contains(errOut, line) || !strings.Contains(errOut, tc.want) {
					t.Errorf("config check = exit %d %q, want exit %d naming %s and saying %q", code, errOut, ExitConfig, line, tc.want)
				}
				checkOneLineError(t, out, errOut)
			}
			if tc.listen != nil || tc.forward != nil {
				if tc.listen != nil {
					_, err = client.Listen(context.Background(), *tc.listen)
				} else {
					_, err = client.Forward(context.Background(), *tc.forward)
				}
				if !errors.Is(err, spec.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("through the API: %v, want ErrInvalid saying %q", err, tc.want)
				}
			}
		})
	}
	if out, _, _ := d.CLI(t, "ls"); out != "" {
		t.Fatalf("listeners left behind by refused combinations:\n%s", out)
	}
}

// TestUDPCombinations runs the combinations of a UDP tunnel that work
// (README "Combining options"), through real daemons and sockets: a UDP
// forward to several peers, each flow going to the peer the policy picks,
// and a UDP forward made from a share ticket carrying an invite.
func TestUDPCombinations(t *testing.T) {
	a, b, c := startDaemon(t), startDaemon(t), startDaemon(t)

	t.Run("several peers", func(t *testing.T) {
		for _, d := range []*harness.Daemon{b, c} {
			name := []byte(d.ID)
			target := testnet.ServeUDP(t, func([]byte) []byte { return name })
			if _, errOut, code := d.CLI(t, "listen", "/x/dns", target.Addr, "--allow", a.ID); code != 0 {
				t.Fatalf("listen: %d %s", code, errOut)
			}
		}
		out, errOut, code := a.CLI(t, "forward", "/x/dns", "/ip4/127.0.0.1/udp/0", b.Addresses[0], c.Addresses[0], "--balance", "round-robin")
		if code != 0 {
			t.Fatalf("forward: %d %s", code, errOut)
		}
		addr := harness.UDPHostPort(t, out)
		// Each client is a flow of its own; round-robin sends one flow to
		// each peer in turn.
		answered := map[string]int{}
		for range 4 {
			got, err := ask(udpClient(t, addr), []byte("who?"))
			if err != nil {
				t.Fatalf("no answer through the forward: %v\nA:\n%s", err, a.Logs)
			}
			answered[string(got)]++
		}
		if answered[b.ID] == 0 || answered[c.ID] == 0 || answered[b.ID]+answered[c.ID] != 4 {
			t.Fatalf("answers by peer: %v; want flows to both %s and %s", answered, b.ID, c.ID)
		}
	})

	t.Run("ticket with an invite", func(t *testing.T) {
		target := testnet.ServeUDP(t, func(q []byte) []byte { return append([]byte("answer to "), q...) })
		if _, errOut, code := b.CLI(t, "listen", "/x/dns-invite", target.Addr, "--invite-only"); code != 0 {
			t.Fatalf("listen --invite-only: %d %s", code, errOut)
		}
		out, errOut, code := b.CLI(t, "share", "/x/dns-invite", "--invite")
		if code != 0 {
			t.Fatalf("share --invite: %d %s", code, errOut)
		}
		out, errOut, code = a.CLI(t, "forward", strings.TrimSpace(out), "/ip4/127.0.0.1/udp/0")
		if code != 0 {
			t.Fatalf("forward TICKET: %d %s", code, errOut)
		}
		got, err := ask(udpClient(t, harness.UDPHostPort(t, out)), []byte("q"))
		if err != nil || string(got) != "answer to q" {
			t.Fatalf("through the ticket's forward: %q %v\nA:\n%s\nB:\n%s", got, err, a.Logs, b.Logs)
		}
	})
}
