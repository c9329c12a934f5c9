package cli

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ucli "github.com/urfave/cli/v2"
)

const unitFile = "../contrib/systemd/p2ptun.service"

// unitEntry is one Key=Value line of a unit file.
type unitEntry struct {
	section, key, value string
	line                int
	commented           bool // "#Key=Value": an example the file suggests
}

// parseUnit reads a systemd unit file: [Section] headers, Key=Value lines,
// comments. Commented-out Key=Value lines are kept, marked, so that the
// examples a unit suggests are checked too.
func parseUnit(t *testing.T, path string) []unitEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out     []unitEntry
		section string
		n       int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		l := strings.TrimSpace(sc.Text())
		if strings.HasSuffix(l, `\`) {
			t.Fatalf("%s:%d: line continuations are not supported by this test", path, n)
		}
		commented := strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";")
		if commented {
			l = strings.TrimSpace(l[1:])
		}
		switch {
		case l == "":
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			if !commented {
				section = l[1 : len(l)-1]
			}
		default:
			k, v, ok := strings.Cut(l, "=")
			if ok && !strings.Contains(k, " ") {
				out = append(out, unitEntry{section, k, strings.TrimSpace(v), n, commented})
			} else if !commented {
				t.Fatalf("%s:%d: not Key=Value: %q", path, n, l)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// unitValues returns the values of section.key that are in effect.
func unitValues(entries []unitEntry, section, key string) []string {
	var out []string
	for _, e := range entries {
		if e.section == section && e.key == key && !e.commented {
			out = append(out, e.value)
		}
	}
	return out
}

// TestSystemdUnit keeps contrib/systemd/p2ptun.service in step with the
// code: its command, flags and P2PTUN_* variables must exist, and what it
// promises (notify readiness, a 0700 home) must hold.
func TestSystemdUnit(t *testing.T) {
	entries := parseUnit(t, unitFile)
	one := func(key string) string {
		t.Helper()
		vs := unitValues(entries, "Service", key)
		if len(vs) != 1 {
			t.Fatalf("[Service] %s is set %d times, want once", key, len(vs))
		}
		return vs[0]
	}
	app := newApp(io.Discard, io.Discard)

	// Type=notify holds only because the daemon sends READY=1.
	if got := one("Type"); got != "notify" {
		t.Errorf("Type=%s, want notify", got)
	}

	argv := strings.Fields(one("ExecStart"))
	if len(argv) < 2 || !filepath.IsAbs(argv[0]) || filepath.Base(argv[0]) != "p2ptun" {
		t.Fatalf("ExecStart=%q, want /path/to/p2ptun COMMAND [FLAGS]", strings.Join(argv, " "))
	}
	var cmd *ucli.Command // nil while the flags are global ones
	for _, a := range argv[1:] {
		if isFlag(a) {
			flags := app.Flags
			if cmd != nil {
				flags = append(slices.Clone(app.Flags), cmd.Flags...)
			}
			if !defines(flags, a) {
				t.Errorf("ExecStart flag %s is not a p2ptun flag", a)
			}
			continue
		}
		if cmd == nil {
			if cmd = app.Command(a); cmd == nil {
				t.Fatalf("ExecStart runs `p2ptun %s`, which is not a p2ptun command", a)
			}
		}
	}
	if cmd == nil || (cmd.Name != "daemon" && cmd.Name != "relay") {
		t.Fatalf("ExecStart=%q should run the daemon or relay command", strings.Join(argv, " "))
	}
	if got := one("ExecReload"); !strings.Contains(got, "kill -HUP $MAINPID") {
		t.Errorf("ExecReload=%s, want kill -HUP $MAINPID (the daemon reloads on SIGHUP)", got)
	}

	// Every P2PTUN_* variable, set or suggested, is one a flag reads.
	envVars := map[string]bool{}
	for _, f := range append(slices.Clone(app.Flags), cmd.Flags...) {
		if ef, ok := f.(interface{ GetEnvVars() []string }); ok {
			for _, e := range ef.GetEnvVars() {
				envVars[e] = true
			}
		}
	}
	env := map[string]string{}
	for _, e := range entries {
		if e.section != "Service" || e.key != "Environment" {
			continue
		}
		for _, kv := range strings.Fields(e.value) {
			k, v, _ := strings.Cut(kv, "=")
			if strings.HasPrefix(k, "P2PTUN_") && !envVars[k] {
				t.Errorf("%s:%d: %s is not read by any flag of `p2ptun %s`", unitFile, e.line, k, cmd.Name)
			}
			if !e.commented {
				env[k] = v
			}
		}
	}

	// The home is the state directory, private to the service's user, as
	// the daemon requires (HOME must be 0700).
	home := env["P2PTUN_HOME"]
	if home != "/var/lib/"+one("StateDirectory") {
		t.Errorf("P2PTUN_HOME=%q, want /var/lib/ + StateDirectory (%s)", home, one("StateDirectory"))
	}
	if got := one("StateDirectoryMode"); got != "0700" {
		t.Errorf("StateDirectoryMode=%s, want 0700", got)
	}
	if !slices.Contains(strings.Fields(one("ReadWritePaths")), home) {
		t.Errorf("ReadWritePaths=%s does not include the home %s", one("ReadWritePaths"), home)
	}
	if one("User") == "" || one("User") == "root" {
		t.Errorf("User=%q, want a dedicated user", one("User"))
	}
	fams := strings.Fields(one("RestrictAddressFamilies"))
	for _, want := range []string{"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"} {
		if !slices.Contains(fams, want) {
			t.Errorf("RestrictAddressFamilies lacks %s, which the daemon needs", want)
		}
	}
}

// TestSystemdUnitVerifies runs `systemd-analyze verify` on the unit, with
// ExecStart pointed at an executable that exists here.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not on PATH; install systemd to check contrib/systemd/p2ptun.service")
	}
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.Replace(string(b), "ExecStart=/usr/local/bin/p2ptun ", "ExecStart="+self+" ", 1)
	if unit == string(b) {
		t.Fatal("ExecStart no longer starts with /usr/local/bin/p2ptun; update this test and README.md")
	}
	path := filepath.Join(t.TempDir(), "p2ptun.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// verify exits 0 on many problems (an unknown key or value is only
	// "ignoring"), so any word about this unit is a failure. Other units on
	// the machine may draw warnings too; those are only shown.
	for l := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		switch {
		case l == "":
		case strings.Contains(l, "p2ptun"):
			t.Errorf("systemd-analyze verify: %s", l)
		default:
			t.Logf("systemd-analyze verify (about another unit): %s", l)
		}
	}
}
