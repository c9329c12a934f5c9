package main

import (
	"bufio"
	"bytes"
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

	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/internal/notifysock"
)

var (
	buildOnce sync.Once
	binDir    string // holds the built binary; removed by TestMain
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// binary builds p2ptun once per test run and returns its path. The first
// call may take minutes (a cold build cache, cores busy with other
// packages' tests), so call it before starting any clock: a deadline set
// before it would be spent on the build. The build itself is bounded only
// by the test run's -timeout: no fixed limit fits every cache and load.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "p2ptun-bin"); buildErr != nil {
			return
		}
		out := filepath.Join(binDir, "p2ptun")
		cmd := exec.Command(gobin, "build", "-o", out, ".")
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err, b}
			return
		}
		binPath = out
	})
	if buildErr != nil {
		t.Fatalf("building p2ptun: %v", buildErr)
	}
	return binPath
}

type buildError struct {
	err    error
	output []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.output) }

// env is the test's environment without P2PTUN_* variables, so that the
// developer's settings cannot change what the binary does, and without
// NOTIFY_SOCKET, so that a test daemon never reports to the service manager
// the tests may run under.
func env() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "P2PTUN_") || strings.HasPrefix(kv, "NOTIFY_SOCKET=")
	})
	// Test daemons never announce themselves on the host's network.
	return append(env, "P2PTUN_NO_MDNS=1")
}

// tempHome returns a short home path: Unix socket paths are limited to
// 108 bytes, which t.TempDir() can exceed.
func tempHome(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "p2pt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "home")
}

// syncBuf is a goroutine-safe buffer for a process's output.
type syncBuf = logbuf.Buffer

// run runs the built binary to completion.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin := binary(t) // before the clock starts
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env()
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running p2ptun %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

func TestDaemonBinarySIGTERM(t *testing.T) {
	t.Parallel()
	testDaemonSignal(t, syscall.SIGTERM)
}

func TestDaemonBinarySIGINT(t *testing.T) {
	t.Parallel()
	testDaemonSignal(t, syscall.SIGINT)
}

// binDaemon is a daemon binary started by startBinary.
type binDaemon struct {
	spec         binSpec
	cmd          *exec.Cmd
	home, ready  string
	id, api      string
	addrs        []string // from the ready file, each ending in /p2p/ID
	metrics      string   // the metrics URL when started with --metrics
	stdout, logs *syncBuf
	exited       chan struct{} // closed once cmd.Wait returns
	err          error         // cmd.Wait's error, set before exited closes
}

// binSpec says how startBinaryWith runs a daemon.
type binSpec struct {
	home       string   // an existing HOME (see restart), or "" for a fresh one
	listenAddr string   // --listen-addr; default /ip4/127.0.0.1/tcp/0
	env        []string // added to env()
	args       []string // more daemon flags
	// life bounds the daemon's run: it is killed then, whatever the test
	// is doing. Default one minute.
	life time.Duration
}

// startBinary runs `p2ptun daemon` from the built binary with extraEnv
// added to env() and waits for its ready file. At cleanup it kills the
// daemon if the test has not stopped it.
func startBinary(t *testing.T, extraEnv []string, extra ...string) *binDaemon {
	t.Helper()
	return startBinaryWith(t, binSpec{env: extraEnv, args: extra})
}

// startBinaryIn is startBinary with a home from tempHome that the test
// may have prepared (a config.toml, say), and a lifetime after which the
// daemon is killed, whatever the test is doing.
func startBinaryIn(t *testing.T, home string, life time.Duration, extraEnv []string, extra ...string) *binDaemon {
	t.Helper()
	return startBinaryWith(t, binSpec{home: home, life: life, env: extraEnv, args: extra})
}

// startBinaryWith is startBinary as spec says.
func startBinaryWith(t *testing.T, spec binSpec) *binDaemon {
	t.Helper()
	if spec.home == "" {
		spec.home = tempHome(t)
	}
	if spec.listenAddr == "" {
		spec.listenAddr = "/ip4/127.0.0.1/tcp/0"
	}
	if spec.life == 0 {
		spec.life = time.Minute
	}
	home := spec.home
	d := &binDaemon{
		spec: spec, home: home, ready: filepath.Join(filepath.Dir(home), "ready.json"),
		stdout: &syncBuf{}, logs: &syncBuf{}, exited: make(chan struct{}),
	}
	// A daemon killed before it could remove its ready file left it.
	if err := os.Remove(d.ready); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	bin := binary(t) // before the daemon's life starts
	ctx, cancel := context.WithTimeout(context.Background(), spec.life)
	args := append([]string{"--home", home, "daemon", "--listen-addr", spec.listenAddr, "--ready-file", d.ready}, spec.args...)
	d.cmd = exec.CommandContext(ctx, bin, args...)
	d.cmd.Env = append(env(), spec.env...)
	d.cmd.Stdout, d.cmd.Stderr = d.stdout, d.logs
	d.cmd.WaitDelay = 5 * time.Second
	if err := d.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		<-d.exited
		cancel()
	})

	var doc struct {
		ID, API, Metrics string
		Addresses        []string
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(d.ready)
		if err == nil && json.Unmarshal(b, &doc) == nil {
			break
		}
		select {
		case <-d.exited:
			t.Fatalf("daemon exited before it was ready (%v):\n%s", d.err, d.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready after 30s:\n%s", d.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if doc.ID == "" || doc.API == "" {
		t.Fatalf("ready file lacks ID or API: %+v", doc)
	}
	d.id, d.api, d.addrs, d.metrics = doc.ID, doc.API, doc.Addresses, doc.Metrics
	return d
}

// restart starts the daemon again, as before and in the same HOME, once
// it has exited.
func (d *binDaemon) restart(t *testing.T) *binDaemon {
	t.Helper()
	select {
	case <-d.exited:
	default:
		t.Fatal("restart of a daemon that is still running")
	}
	return startBinaryWith(t, d.spec)
}

// kill sends SIGKILL and waits for the daemon to be gone.
func (d *binDaemon) kill(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("daemon still running 15s after SIGKILL")
	}
}

// cli runs the binary with --home set to the daemon's.
func (d *binDaemon) cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return run(t, append([]string{"--home", d.home}, args...)...)
}

// stop sends sig and checks that the daemon exits 0 within 15s and
// removes its socket and ready file.
func (d *binDaemon) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	d.waitExit(t, sig)
}

// waitExit checks that the daemon, sent sig, exits 0 within 15s and
// removes its socket and ready file.
func (d *binDaemon) waitExit(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case <-d.exited:
		if d.err != nil {
			t.Errorf("daemon exited with %v after %v, want status 0:\n%s", d.err, sig, d.logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("daemon still running 15s after %v:\n%s", sig, d.logs)
	}
	for _, p := range []string{d.api, d.ready} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still exists after %v (Lstat: %v)", p, sig, err)
		}
	}
}

// testDaemonSignal runs the daemon binary, checks that the CLI can talk to
// it, then sends sig and checks that it shuts down cleanly.
func testDaemonSignal(t *testing.T, sig syscall.Signal) {
	d := startBinary(t, nil)
	if _, err := os.Lstat(d.api); err != nil {
		t.Fatalf("API socket: %v", err)
	}

	if out, errOut, code := run(t, "--home", d.home, "ls"); code != 0 {
		t.Errorf("ls exited %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	out, errOut, code := run(t, "--home", d.home, "id", "--json")
	if code != 0 {
		t.Errorf("id --json exited %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	var id struct{ ID string }
	if err := json.Unmarshal([]byte(out), &id); err != nil || id.ID != d.id {
		t.Errorf("id --json = %q (%v), want ID %s", out, err, d.id)
	}

	// SIGHUP reloads the config file: a [[listen]] added to it starts.
	f, err := os.OpenFile(filepath.Join(d.home, "config.toml"), os.O_APPEND|os.O_WRONLY, 0)
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
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if out, _, _ := run(t, "--home", d.home, "ls"); strings.Contains(out, "/x/hup") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the [[listen]] added before SIGHUP is not running after 15s:\n%s", d.logs)
		}
	}

	d.stop(t, sig)
	if !strings.Contains(d.logs.String(), "shutting down") {
		t.Errorf("log does not say it is shutting down:\n%s", d.logs)
	}
}

// TestDaemonBinaryUnderSystemd runs the binary as the unit in
// contrib/systemd does: it reports READY=1, RELOADING=1 on SIGHUP
// (ExecReload) and STOPPING=1 on NOTIFY_SOCKET, and logs JSON lines only.
func TestDaemonBinaryUnderSystemd(t *testing.T) {
	t.Parallel()
	sock := notifysock.Listen(t, filepath.Join(filepath.Dir(tempHome(t)), "notify.sock"))
	// The environment the unit suggests for JSON logs.
	d := startBinary(t, []string{"NOTIFY_SOCKET=" + sock.Addr, "P2PTUN_LOG_FORMAT=json", "GOLOG_LOG_FMT=json"})

	m := sock.Next(t, d.exited)
	if m["READY"] != "1" || m["MAINPID"] != strconv.Itoa(d.cmd.Process.Pid) || !strings.Contains(m["STATUS"], d.id) {
		t.Fatalf("notification = %q, want READY=1, MAINPID=%d and a STATUS naming %s", m, d.cmd.Process.Pid, d.id)
	}
	if _, errOut, code := run(t, "--home", d.home, "ls"); code != 0 {
		t.Fatalf("ls after READY=1: exit %d: %s", code, errOut)
	}

	// SIGHUP (ExecReload) reloads: RELOADING=1, then READY=1 again.
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if m := sock.Next(t, d.exited); m["RELOADING"] != "1" || m["MONOTONIC_USEC"] == "" {
		t.Fatalf("notification after SIGHUP = %q, want RELOADING=1 with MONOTONIC_USEC", m)
	}
	if m := sock.Next(t, d.exited); m["READY"] != "1" || !strings.Contains(m["STATUS"], d.id) {
		t.Fatalf("notification after the reload = %q, want READY=1 and a STATUS", m)
	}
	if _, errOut, code := run(t, "--home", d.home, "ls"); code != 0 {
		t.Fatalf("ls after SIGHUP: exit %d: %s", code, errOut)
	}

	d.stop(t, syscall.SIGTERM)
	if m := sock.Next(t, nil); m["STOPPING"] != "1" {
		t.Fatalf("notification after SIGTERM = %q, want STOPPING=1", m)
	}
	if out := d.stdout.String(); out != "" {
		t.Errorf("stdout = %q, want nothing", out)
	}
	var msgs []string
	for _, l := range strings.Split(strings.TrimSpace(d.logs.String()), "\n") {
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
	out, errOut, code := run(t, "--home", tempHome(t), "frobnicate")
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
	bin := binary(t)
	d := startBinary(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := exec.CommandContext(ctx, bin, "--home", d.home, "events", "--json")
	events.Env = env()
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
			listen := exec.CommandContext(ctx, bin, "--home", d.home, "listen", fmt.Sprintf("/x/hup%d", i),
				"/ip4/127.0.0.1/tcp/1", "--allow", "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf")
			listen.Env = env()
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
