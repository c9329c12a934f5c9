package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/internal/harness"
)

// placeholderRE is what may stand between backticks in a flag's usage:
// urfave/cli shows it as the flag's value placeholder (--name NAME).
var placeholderRE = regexp.MustCompile("`[A-Z][A-Z0-9_-]*`")

// TestHelpHasNoFakePlaceholders: urfave/cli turns the first `quoted`
// text of a flag's usage into its value placeholder, so a backticked
// command (`p2ptun share PROTO --invite`) became "--invite-only p2ptun
// share PROTO --invite"; and it appends "(default: …)" itself, so a usage
// that says its own default showed two. Every flag of every command is
// checked, and every command's help rendered.
func TestHelpHasNoFakePlaceholders(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	check := func(where string, flags []ucli.Flag) {
		for _, f := range flags {
			u, ok := f.(ucli.DocGenerationFlag)
			if !ok {
				continue
			}
			if rest := placeholderRE.ReplaceAllString(u.GetUsage(), ""); strings.Contains(rest, "`") {
				t.Errorf("%s --%s: usage %q has backticks around something that is not a placeholder", where, f.Names()[0], u.GetUsage())
			}
		}
	}
	check("p2ptun", app.Flags)
	var walk func(path []string, cmds []*ucli.Command)
	walk = func(path []string, cmds []*ucli.Command) {
		for _, c := range cmds {
			p := append(append([]string{}, path...), c.Name)
			check("p2ptun "+strings.Join(p, " "), c.Flags)
			out, _, code := run(t, append(p, "--help")...)
			if code != ExitOK {
				t.Errorf("%s --help: exit %d", strings.Join(p, " "), code)
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.Count(line, "(default:") > 1 {
					t.Errorf("%s --help shows two defaults: %q", strings.Join(p, " "), strings.TrimSpace(line))
				}
			}
			walk(p, c.Subcommands)
		}
	}
	walk(nil, app.Commands)
	var opts []string
	for cmd, flags := range map[string][]string{"listen": {"--name", "--invite-only", "--egress"}, "daemon": {"--strict"}, "top": {"--iterations"}} {
		out, _, _ := run(t, cmd, "--help")
		for _, line := range strings.Split(out, "\n") {
			line = strings.TrimSpace(line)
			for _, f := range flags {
				// An option's line pads its name from its usage; the
				// description's lines do not.
				if (strings.HasPrefix(line, f+" ") || strings.HasPrefix(line, f+",")) && strings.Contains(line, "  ") {
					opts = append(opts, cmd+": "+strings.Join(strings.Fields(line), " "))
				}
			}
		}
	}
	slices.Sort(opts)
	golden(t, "help-flags.golden", strings.Join(opts, "\n")+"\n")
}

// TestOutputPolish: what listen, forward, close and reload --json print,
// and config show with a daemon flag, against a golden file.
func TestOutputPolish(t *testing.T) {
	home, _ := initHome(t)
	a, b := startDaemon(t), startIn(t, home, "daemon")
	n := &normalizer{}
	n.add(a.ID, "<PEER-A>")
	n.add(b.ID, "<PEER-B>")
	var all strings.Builder
	step := func(d *daemonRef, args ...string) string {
		t.Helper()
		out, errOut, code := d.CLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		fmt.Fprintf(&all, "$ p2ptun %s  # on %s\n%s", n.apply(strings.Join(args, " ")), d.name, n.apply(out))
		return out
	}
	da, db := &daemonRef{a, "a"}, &daemonRef{b, "b"}
	target := echoTarget(t)
	step(db, "listen", "/x/echo", target, "--allow", a.ID)
	step(db, "listen", "/x/open", target, "--allow-all")
	step(db, "listen", "/x/dns", "/ip4/127.0.0.1/udp/53", "--allow", a.ID)
	step(db, "listen", "/x/net", "--egress", "--permit", "10.0.0.0/8:22", "--allow", a.ID)
	step(da, "forward", "/x/echo", "127.0.0.1:0", b.Addresses[0])
	step(da, "close", "-p", "/x/echo")
	step(db, "close", "-a")
	out := step(db, "reload", "--json")
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Added", "Removed", "Unchanged", "Restarted", "Failed"} {
		if _, ok := raw[k].([]any); !ok {
			t.Errorf("reload --json: %s is %v, want a list", k, raw[k])
		}
	}
	out, errOut, code := run(t, "--home", home, "config", "show", "--listen-addr", "/ip4/127.0.0.1/tcp/4242", "--metrics", "127.0.0.1:9464")
	if code != 0 {
		t.Fatalf("config show: exit %d: %s", code, errOut)
	}
	for _, want := range []string{`listen_addrs = ["/ip4/127.0.0.1/tcp/4242"]`, `listen = "127.0.0.1:9464"`} {
		if !strings.Contains(out, want) {
			t.Errorf("config show with daemon flags lacks %s:\n%s", want, out)
		}
	}
	golden(t, "polish.golden", all.String())
}

type daemonRef struct {
	*harness.Daemon
	name string
}

// TestJSONLogAddrsAreArrays: with --log-format json, the addresses in
// "node started" and "daemon ready" are arrays, one string per address.
func TestJSONLogAddrsAreArrays(t *testing.T) {
	d := startDaemon(t, "--log-format", "json")
	seen := map[string]bool{}
	for _, line := range strings.Split(d.Logs.String(), "\n") {
		var rec struct {
			Msg   string
			Addrs json.RawMessage
		}
		if json.Unmarshal([]byte(line), &rec) != nil || (rec.Msg != "node started" && rec.Msg != "daemon ready") {
			continue
		}
		var addrs []string
		if err := json.Unmarshal(rec.Addrs, &addrs); err != nil || len(addrs) == 0 {
			t.Errorf("%q: addrs = %s, want an array of addresses", rec.Msg, rec.Addrs)
		}
		seen[rec.Msg] = true
	}
	if !seen["node started"] || !seen["daemon ready"] {
		t.Fatalf("log lacks node started or daemon ready (seen %v):\n%s", seen, d.Logs.String())
	}
}
