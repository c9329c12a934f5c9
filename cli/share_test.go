package cli

import (
	"encoding/json"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// tunnelEchoes makes one round trip through the forward at multiaddr fwd.
func tunnelEchoes(t *testing.T, fwd string) {
	t.Helper()
	c, err := net.Dial("tcp", harness.HostPort(t, fwd))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("through the ticket")); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "through the ticket" {
		t.Fatalf("echo = %q, %v", got, err)
	}
}

// refused asserts that a connection to the forward at multiaddr fwd ends
// with a reset: the listener did not let the peer in.
func refused(t *testing.T, fwd string) {
	t.Helper()
	c, err := net.Dial("tcp", harness.HostPort(t, fwd))
	if err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		_, err = io.ReadAll(c)
	}
	if !harness.IsReset(err) {
		t.Fatalf("connection through a refused forward: %v, want a reset", err)
	}
}

// allowedOn returns the AllowedPeers of d's listener on proto, from `ls --json`.
func allowedOn(t *testing.T, d *harness.Daemon, proto string) []string {
	t.Helper()
	out, errOut, code := d.CLI(t, "ls", "--json")
	if code != 0 {
		t.Fatalf("ls --json: %d %s", code, errOut)
	}
	var list struct {
		Listeners []struct {
			Protocol, Kind string
			AllowedPeers   []string
			InviteOnly     bool
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	for _, l := range list.Listeners {
		if l.Kind == "listen" && l.Protocol == proto {
			return l.AllowedPeers
		}
	}
	t.Fatalf("no listener on %s in %s", proto, out)
	return nil
}

func TestShareTicketAndInvite(t *testing.T) {
	a, b, c := startDaemon(t), startDaemon(t), startDaemon(t)

	// A plain ticket: the peer, its addresses and the protocol in one line.
	if _, errOut, code := b.CLI(t, "listen", "/x/echo", echoTarget(t), "--allow", a.ID); code != 0 {
		t.Fatalf("listen: %s", errOut)
	}
	out, errOut, code := b.CLI(t, "share", "/x/echo")
	if code != 0 || !strings.HasPrefix(out, "p2ptun1") || strings.Count(out, "\n") != 1 || strings.TrimSpace(out) != strings.TrimSuffix(out, "\n") {
		t.Fatalf("share: code %d, out %q, err %q; want one line starting with p2ptun1", code, out, errOut)
	}
	plain := strings.TrimSpace(out)
	out, errOut, code = a.CLI(t, "forward", plain, "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("forward TICKET: code %d: %s", code, errOut)
	}
	tunnelEchoes(t, out)

	// An invite to an invite-only listener.
	if _, errOut, code := b.CLI(t, "listen", "/x/priv", echoTarget(t), "--invite-only"); code != 0 {
		t.Fatalf("listen --invite-only: %s", errOut)
	}
	if out, _, _ := b.CLI(t, "ls"); !strings.Contains(out, "/x/priv") || !strings.Contains(out, " none ") {
		t.Errorf("ls shows the invite-only listener without \"none\":\n%s", out)
	}
	before := time.Now()
	out, errOut, code = b.CLI(t, "share", "/x/priv", "--invite", "--ttl", "10m", "--json")
	if code != 0 {
		t.Fatalf("share --invite --json: %d %s", code, errOut)
	}
	var sh struct {
		Ticket, Peer, Protocol string
		Addresses              []string
		Expires                time.Time
	}
	if err := json.Unmarshal([]byte(out), &sh); err != nil {
		t.Fatalf("share --json: %v\n%s", err, out)
	}
	if sh.Peer != b.ID || sh.Protocol != "/x/priv" || !slices.Equal(sh.Addresses, b.Addresses) ||
		sh.Expires.Before(before.Add(10*time.Minute)) || sh.Expires.After(time.Now().Add(10*time.Minute)) {
		t.Errorf("share --json = %+v; want peer %s, /x/priv, addresses %q, expiry in 10 minutes", sh, b.ID, b.Addresses)
	}

	out, errOut, code = a.CLI(t, "forward", sh.Ticket, "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("forward with the invite: %d %s", code, errOut)
	}
	tunnelEchoes(t, out)

	// The same invite from another peer is refused, and binds nothing.
	out, errOut, code = c.CLI(t, "forward", sh.Ticket, "127.0.0.1:0")
	if code != ExitDenied || out != "" || !strings.HasPrefix(errOut, "p2ptun: ") ||
		!strings.Contains(errOut, "invite already used") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("second use of the invite: code %d, out %q, err %q; want exit %d and one line saying \"invite already used\"", code, out, errOut, ExitDenied)
	}
	if out, _, _ := c.CLI(t, "ls"); out != "" {
		t.Fatalf("the refused forward left listeners:\n%s", out)
	}
	// Nor can that peer use the listener without the invite.
	out, errOut, code = c.CLI(t, "forward", "/x/priv", "127.0.0.1:0", b.Addresses[0])
	if code != 0 {
		t.Fatalf("plain forward: %d %s", code, errOut)
	}
	refused(t, out)

	if got := allowedOn(t, b, "/x/priv"); !slices.Equal(got, []string{a.ID}) {
		t.Errorf("/x/priv allows %q, want only %s", got, a.ID)
	}
	if got := allowedOn(t, b, "/x/echo"); !slices.Equal(got, []string{a.ID}) {
		t.Errorf("/x/echo allows %q, want only %s", got, a.ID)
	}
}

func TestExpiredInviteIsRefused(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	if _, errOut, code := b.CLI(t, "listen", "/x/priv", echoTarget(t), "--invite-only"); code != 0 {
		t.Fatalf("listen: %s", errOut)
	}
	out, errOut, code := b.CLI(t, "share", "/x/priv", "--invite", "--ttl", "1ms", "--json")
	if code != 0 {
		t.Fatalf("share: %d %s", code, errOut)
	}
	var sh struct {
		Ticket  string
		Expires time.Time
	}
	if err := json.Unmarshal([]byte(out), &sh); err != nil {
		t.Fatal(err)
	}
	// A millisecond: it has passed by now, but make sure.
	for time.Now().Before(sh.Expires.Add(time.Millisecond)) {
		runtime.Gosched()
	}
	out, errOut, code = a.CLI(t, "forward", sh.Ticket, "127.0.0.1:0")
	if code != ExitDenied || out != "" || !strings.Contains(errOut, "invite expired") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("expired invite: code %d, out %q, err %q; want exit %d and one line saying \"invite expired\"", code, out, errOut, ExitDenied)
	}
	if got := allowedOn(t, b, "/x/priv"); len(got) != 0 {
		t.Errorf("an expired invite admitted %q", got)
	}
}

func TestShareAndTicketErrors(t *testing.T) {
	d, other := startDaemon(t), startDaemon(t)
	target := echoTarget(t)
	if _, errOut, code := other.CLI(t, "listen", "/x/open", target, "--allow-all"); code != 0 {
		t.Fatalf("listen: %s", errOut)
	}
	if _, errOut, code := other.CLI(t, "listen", "/x/priv", target, "--invite-only"); code != 0 {
		t.Fatalf("listen: %s", errOut)
	}
	out, _, code := other.CLI(t, "share", "/x/open")
	if code != 0 {
		t.Fatal("share failed")
	}
	good := strings.TrimSpace(out)
	out, _, code = other.CLI(t, "share", "/x/priv", "--invite")
	if code != 0 {
		t.Fatal("share --invite failed")
	}
	invite := strings.TrimSpace(out)
	damaged := good[:len(good)/2] + "a" + good[len(good)/2+1:]
	if damaged == good {
		damaged = good[:len(good)/2] + "b" + good[len(good)/2+1:]
	}

	for _, tc := range []struct {
		name string
		d    *harness.Daemon
		args []string
		code int
		want string
	}{
		{"share a protocol nothing listens on", other, []string{"share", "/x/none"}, ExitNotFound, "nothing listens on /x/none"},
		{"share a bad protocol", other, []string{"share", "web"}, ExitUsage, "must be a path"},
		{"share --ttl without --invite", other, []string{"share", "/x/priv", "--ttl", "1h"}, ExitUsage, "add --invite"},
		{"share --ttl 0", other, []string{"share", "/x/priv", "--invite", "--ttl", "0s"}, ExitUsage, "positive"},
		{"invite to an allow-all listener", other, []string{"share", "/x/open", "--invite"}, ExitUsage, "without --invite"},
		{"listen --invite-only --allow-all", other, []string{"listen", "/x/both", target, "--invite-only", "--allow-all"}, ExitUsage, "contradict"},
		{"forward with something that is not a ticket", d, []string{"forward", "12D3KooWNope", "127.0.0.1:0"}, ExitUsage, "not a p2ptun ticket"},
		{"forward with a damaged ticket", d, []string{"forward", damaged, "127.0.0.1:0"}, ExitUsage, "damaged ticket"},
		{"forward with a cut ticket", d, []string{"forward", good[:len(good)-3], "127.0.0.1:0"}, ExitUsage, "damaged ticket"},
		{"forward with a later ticket format", d, []string{"forward", "p2ptun2" + good[7:], "127.0.0.1:0"}, ExitUsage, "unsupported ticket format"},
		{"forward with a ticket and no listen address", d, []string{"forward", good}, ExitUsage, "TICKET LISTEN-ADDR"},
		{"forward with two arguments", d, []string{"forward", "/x/open", "127.0.0.1:0"}, ExitUsage, "PROTO LISTEN-ADDR PEER-ADDR, or TICKET LISTEN-ADDR"},
		{"forward with a ticket and a bad listen address", d, []string{"forward", good, "/dns/localhost/tcp/0"}, ExitUsage, "must use an IP"},
		{"forward with an invite, lazily", d, []string{"forward", invite, "127.0.0.1:0", "--lazy"}, ExitUsage, "drop --lazy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := tc.d.CLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if !strings.HasPrefix(errOut, "p2ptun: ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q: want one line starting with \"p2ptun: \" and containing %q", errOut, tc.want)
			}
		})
	}
	if out, _, _ := d.CLI(t, "ls"); out != "" {
		t.Errorf("failed commands left listeners:\n%s", out)
	}
	// The invite was not spent by the refused lazy forward.
	if out, errOut, code := d.CLI(t, "forward", invite, "127.0.0.1:0"); code != 0 {
		t.Errorf("the invite after the refused attempts: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := run(t, "--home", harness.TempHome(t), "share", "/x/web"); code != ExitDaemonNotRunning {
		t.Errorf("share with no daemon: exit %d (%q), want %d", code, errOut, ExitDaemonNotRunning)
	}
}
