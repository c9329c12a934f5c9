package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/testnet"
)

var (
	buildOnce sync.Once
	binDir    string // holds the built binary; removed by RemoveBinary
	binPath   string
	buildErr  error
)

// Binary builds p2ptun once per test process and returns its path. The
// first call may take minutes (a cold build cache, cores busy with other
// packages' tests), so call it before starting any clock: a deadline set
// before it would be spent on the build. The build itself is bounded only
// by the test run's -timeout: no fixed limit fits every cache and load.
// A TestMain that lets tests call it calls RemoveBinary after m.Run.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "p2ptun-bin"); buildErr != nil {
			return
		}
		out := filepath.Join(binDir, "p2ptun")
		cmd := exec.Command(gobin, "build", "-o", out, ".")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%w\n%s", err, b)
			return
		}
		binPath = out
	})
	if buildErr != nil {
		t.Fatalf("building p2ptun: %v", buildErr)
	}
	return binPath
}

// RemoveBinary removes what Binary built, if anything.
func RemoveBinary() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// moduleRoot is the directory of the go.mod above the working directory
// (a package's directory while its tests run).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Env is the test's environment for a p2ptun process: without P2PTUN_*
// variables, so that the developer's settings cannot change what the
// binary does, without NOTIFY_SOCKET, so that a test daemon never reports
// to the service manager the tests may run under, and with
// P2PTUN_NO_MDNS=1, so that test daemons never announce themselves on the
// host's network.
func Env() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "P2PTUN_") || strings.HasPrefix(kv, "NOTIFY_SOCKET=")
	})
	return append(env, "P2PTUN_NO_MDNS=1")
}

// TempHome returns a short HOME path that does not exist yet, in a
// directory removed at cleanup: Unix socket paths are limited to 108
// bytes, which t.TempDir() can exceed. The daemon's ready file goes
// beside it.
func TempHome(t testing.TB) string {
	t.Helper()
	return filepath.Join(testnet.ShortDir(t), "home")
}

// Run runs the built binary with args to completion (at most 30 s) in
// Env and returns its output and exit code.
func Run(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin := Binary(t) // before the clock starts
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = Env()
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running p2ptun %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}
