package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/logbuf"
)

// TestAPIOperatorGroup runs a daemon as its own user (a member of the
// operator group, as it must be to give the socket to it) with `[api] group`
// set, and the CLI as real users: the daemon's user, root and a member of
// the group (by a supplementary group) may use the control socket; any
// other user is refused with one line and exit code 8.
func TestAPIOperatorGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it creates users and groups with useradd and groupadd")
	}
	for _, prog := range []string{"useradd", "groupadd", "userdel", "groupdel", "setpriv"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("needs %s (Debian packages passwd and util-linux)", prog)
		}
	}
	suffix := randomSuffix(t)
	ops := "p2pops" + suffix
	owner, member, other := "p2pown"+suffix, "p2pmem"+suffix, "p2poth"+suffix
	runOK(t, "groupadd", ops)
	t.Cleanup(func() { _ = exec.Command("groupdel", ops).Run() })
	for _, u := range []struct{ name, groups string }{{owner, ops}, {member, ops}, {other, ""}} {
		args := []string{"--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group"}
		if u.groups != "" {
			args = append(args, "--groups", u.groups)
		}
		runOK(t, "useradd", append(args, u.name)...)
		t.Cleanup(func() { _ = exec.Command("userdel", u.name).Run() })
	}

	// Everyone can reach the binary and the daemon's directory; the home
	// inside is the daemon user's.
	base, err := os.MkdirTemp("", "p2pops-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "p2ptun")
	b, err := os.ReadFile(harness.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	ou, err := user.Lookup(owner)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(ou.Uid)
	gid, _ := strconv.Atoi(ou.Gid)
	dir := filepath.Join(base, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	if _, stderr, code := asUser(t, owner, bin, "--home", home, "init"); code != 0 {
		t.Fatalf("init as %s: exit %d: %s", owner, code, stderr)
	}
	cfg := filepath.Join(home, "config.toml")
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(text), "\ngroup = \"\"\n", "\ngroup = \""+ops+"\"\n", 1)
	if edited == string(text) {
		t.Fatalf("init's config.toml has no [api] group key:\n%s", text)
	}
	if err := os.WriteFile(cfg, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}

	ready := filepath.Join(dir, "ready.json")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	var logs logbuf.Buffer
	daemon := exec.CommandContext(ctx, "setpriv", "--reuid", owner, "--regid", owner, "--init-groups",
		bin, "--home", home, "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0", "--ready-file", ready)
	daemon.Env = harness.Env()
	daemon.Stderr = &logs
	daemon.WaitDelay = 5 * time.Second
	if err := daemon.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = daemon.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = daemon.Process.Kill()
		<-exited
		cancel()
	})
	harness.WaitReady(t, ready, exited, &logs, 30*time.Second)

	for _, st := range []struct {
		path string
		mode os.FileMode
	}{{home, 0o750}, {filepath.Join(home, "api.sock"), 0o660}} {
		fi, err := os.Stat(st.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != st.mode {
			t.Errorf("%s: mode %04o, want %04o", st.path, fi.Mode().Perm(), st.mode)
		}
	}

	for _, u := range []string{owner, "root", member} {
		if out, stderr, code := asUser(t, u, bin, "--home", home, "id"); code != 0 || out == "" {
			t.Errorf("id as %s: exit %d, stdout %q, stderr %q; want exit 0", u, code, out, stderr)
		}
	}
	out, stderr, code := asUser(t, other, bin, "--home", home, "id")
	if code != 8 || out != "" {
		t.Errorf("id as %s: exit %d, stdout %q; want exit 8 (denied) and nothing", other, code, out)
	}
	t.Logf("as %s: %s", other, stderr)
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(stderr, "[api] group") {
		t.Errorf("id as %s: stderr %q; want one line that names the [api] group", other, stderr)
	}
}

// asUser runs bin with args as the user name (root as itself), with that
// user's groups, and returns its output and exit code.
func asUser(t *testing.T, name, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if name != "root" {
		cmd = exec.CommandContext(ctx, "setpriv", append([]string{"--reuid", name, "--regid", name, "--init-groups", bin}, args...)...)
	}
	cmd.Env = harness.Env()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %s as %s: %v", bin, name, err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

func runOK(t *testing.T, prog string, args ...string) {
	t.Helper()
	if out, err := exec.Command(prog, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
