package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/notifysock"
)

func TestMain(m *testing.M) { harness.Main(m) }

func TestDaemonBinarySIGTERM(t *testing.T) {
	t.Parallel()
	testDaemonSignal(t, syscall.SIGTERM)
}

func TestDaemonBinarySIGINT(t *testing.T) {
	t.Parallel()
	testDaemonSignal(t, syscall.SIGINT)
}

// testDaemonSignal runs the daemon binary, checks that the CLI can talk to
// it, then sends sig and checks that it shuts down cleanly.
func testDaemonSignal(t *testing.T, sig syscall.Signal) {
	d := harness.Start(t, harness.Spec{})
	if _, err := os.Lstat(d.API); err != nil {
		t.Fatalf("API socket: %v", err)
	}

	if out, errOut, code := harness.Run(t, "--home", d.Home, "ls"); code != 0 {
		t.Errorf("ls exited %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	out, errOut, code := harness.Run(t, "--home", d.Home, "id", "--json")
	if code != 0 {
		t.Errorf("id --json exited %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	var id struct{ ID string }
	if err := json.Unmarshal([]byte(out), &id); err != nil || id.ID != d.ID {
		t.Errorf("id --json = %q (%v), want ID %s", out, err, d.ID)
	}

	// SIGHUP reloads the config file: a [[listen]] added to it starts.
	f, err := os.OpenFile(filepath.Join(d.Home, "config.toml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("\n[[listen]]\nprotocol = \"/x/hup\"\ntarget = \"127.0.0.1:1\"\nallow_all = true\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.Until(t, 15*time.Second, "[[listen]] added before SIGHUP running", func() bool {
		out, _, _ := harness.Run(t, "--home", d.Home, "ls")
		return strings.Contains(out, "/x/hup")
	})

	d.Signal(t, sig)
	if !strings.Contains(d.Logs.String(), "shutting down") {
		t.Errorf("log does not say it is shutting down:\n%s", d.Logs)
	}
}

// TestDaemonBinaryUnderSystemd runs the binary as the unit in
// contrib/systemd does: it reports READY=1, RELOADING=1 on SIGHUP
// (ExecReload) and STOPPING=1 on NOTIFY_SOCKET, and logs JSON lines only.
func TestDaemonBinaryUnderSystemd(t *testing.T) {
	t.Parallel()
	sock := notifysock.Listen(t, filepath.Join(filepath.Dir(harness.TempHome(t)), "notify.sock"))
	// The environment the unit suggests for JSON logs.
	d := harness.Start(t, harness.Spec{Env: []string{"NOTIFY_SOCKET=" + sock.Addr, "P2PTUN_LOG_FORMAT=json", "GOLOG_LOG_FMT=json"}})

	m := sock.Next(t, d.Exited)
	if m["READY"] != "1" || m["MAINPID"] != strconv.Itoa(d.Cmd.Process.Pid) || !strings.Contains(m["STATUS"], d.ID) {
		t.Fatalf("notification = %q, want READY=1, MAINPID=%d and a STATUS naming %s", m, d.Cmd.Process.Pid, d.ID)
	}
	if _, errOut, code := harness.Run(t, "--home", d.Home, "ls"); code != 0 {
		t.Fatalf("ls after READY=1: exit %d: %s", code, errOut)
	}

	// SIGHUP (ExecReload) reloads: RELOADING=1, then READY=1 again.
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if m := sock.Next(t, d.Exited); m["RELOADING"] != "1" || m["MONOTONIC_USEC"] == "" {
		t.Fatalf("notification after SIGHUP = %q, want RELOADING=1 with MONOTONIC_USEC", m)
	}
	if m := sock.Next(t, d.Exited); m["READY"] != "1" || !strings.Contains(m["STATUS"], d.ID) {
		t.Fatalf("notification after the reload = %q, want READY=1 and a STATUS", m)
	}
	if _, errOut, code := harness.Run(t, "--home", d.Home, "ls"); code != 0 {
		t.Fatalf("ls after SIGHUP: exit %d: %s", code, errOut)
	}

	d.Signal(t, syscall.SIGTERM)
	if m := sock.Next(t, nil); m["STOPPING"] != "1" {
		t.Fatalf("notification after SIGTERM = %q, want STOPPING=1", m)
	}
	if out := d.Stdout.String(); out != "" {
		t.Errorf("stdout = %q, want nothing", out)
	}
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(d.Logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("stderr line is not JSON (%v): %q", err, l)
		}
		timeKey := "time"
		if _, ok := rec["logger"]; ok {
			timeKey = "ts" // go-libp2p's own (errors only), in go-log's format
		}
		for _, k := range []string{timeKey, "level", "msg"} {
			if _, ok := rec[k].(string); !ok {
				t.Errorf("log line lacks %q: %q", k, l)
			}
		}
		msg, _ := rec["msg"].(string)
		msgs = append(msgs, msg)
	}
	for _, want := range []string{"daemon ready", "shutting down"} {
		if !slices.Contains(msgs, want) {
			t.Errorf("no %q record among %q", want, msgs)
		}
	}
}

func TestMainUsageExitCode(t *testing.T) {
	t.Parallel()
	out, errOut, code := harness.Run(t, "--home", harness.TempHome(t), "frobnicate")
	if code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	if out != "" {
		t.Errorf("stdout = %q, want nothing", out)
	}
	if !strings.HasPrefix(errOut, "p2ptun: ") || strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") {
		t.Errorf("stderr = %q, want one line starting with \"p2ptun: \"", errOut)
	}
}

// TestPackageDocs checks that each package has exactly one package
// comment, and that a library package keeps it in doc.go.
func TestPackageDocs(t *testing.T) {
	problems, err := packageDocProblems(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}

	t.Run("CatchesOffenders", func(t *testing.T) {
		root := t.TempDir()
		files := map[string]string{
			"good/doc.go":         "// Package good is documented.\npackage good\n",
			"good/good.go":        "package good\n",
			"good/good_test.go":   "// Package good tests are not counted.\npackage good\n",
			"none/none.go":        "package none\n",
			"twice/doc.go":        "// Package twice is documented.\npackage twice\n",
			"twice/twice.go":      "// Package twice is documented again.\npackage twice\n",
			"elsewhere/x.go":      "// Package elsewhere is documented outside doc.go.\npackage elsewhere\n",
			"cmd/tool/main.go":    "// Command tool does things.\npackage main\n",
			"detached/doc.go":     "// A comment separated from the clause.\n\npackage detached\n",
			"testdata/bad/bad.go": "package bad\n",
			".hidden/bad.go":      "package bad\n",
		}
		for name, src := range files {
			p := filepath.Join(root, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := packageDocProblems(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{"none", "twice", "elsewhere", "detached"} {
			if !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, filepath.Join(root, dir)+":") }) {
				t.Errorf("no problem reported for %s; got %q", dir, got)
			}
		}
		if len(got) != 4 {
			t.Errorf("got %d problems, want 4: %q", len(got), got)
		}
	})
}

// packageDocProblems walks root and describes every package directory
// whose package comment is missing, repeated, or (for a library package)
// not in doc.go. It skips testdata, bin and hidden directories.
func packageDocProblems(root string) ([]string, error) {
	var problems []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (name == "testdata" || name == "bin" || strings.HasPrefix(name, ".")) {
			return filepath.SkipDir
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		var (
			pkg     string
			withDoc []string
		)
		fset := token.NewFileSet()
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(path, n), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				return err
			}
			pkg = f.Name.Name
			if f.Doc != nil {
				withDoc = append(withDoc, n)
			}
		}
		switch {
		case pkg == "":
			// Not a Go package.
		case len(withDoc) == 0:
			problems = append(problems, path+": package "+pkg+" has no package comment; add one in doc.go")
		case len(withDoc) > 1:
			problems = append(problems, path+": package "+pkg+" has package comments in "+strings.Join(withDoc, ", ")+"; keep exactly one")
		case pkg != "main" && withDoc[0] != "doc.go":
			problems = append(problems, path+": package "+pkg+" has its package comment in "+withDoc[0]+"; move it to doc.go")
		}
		return nil
	})
	return problems, err
}

// Only the daemon catches SIGHUP (to reload). Any other command ends on it:
// ssh hangs up on its ProxyCommand (p2ptun pipe) with SIGHUP. events is
// used here because its first line proves it is running, past main.
func TestCommandsOtherThanTheDaemonEndOnSIGHUP(t *testing.T) {
	bin := harness.Binary(t)
	d := harness.Start(t, harness.Spec{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := exec.CommandContext(ctx, bin, "--home", d.Home, "events", "--json")
	events.Env = harness.Env()
	out, err := events.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Start(); err != nil {
		t.Fatal(err)
	}
	// Listeners are opened until events shows one: it may subscribe after
	// the first.
	seen := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-seen:
				return
			case <-ctx.Done():
				return
			default:
			}
			listen := exec.CommandContext(ctx, bin, "--home", d.Home, "listen", fmt.Sprintf("/x/hup%d", i),
				"/ip4/127.0.0.1/tcp/1", "--allow", "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf")
			listen.Env = harness.Env()
			_ = listen.Run()
		}
	})
	lines := bufio.NewScanner(out)
	for !strings.Contains(lines.Text(), "tunnel_up") {
		if !lines.Scan() {
			close(seen)
			t.Fatalf("events ended before it showed a tunnel_up: %v", lines.Err())
		}
	}
	close(seen)
	if err := events.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	err = events.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGHUP {
		t.Fatalf("events after SIGHUP: %v, want killed by SIGHUP", err)
	}
}
