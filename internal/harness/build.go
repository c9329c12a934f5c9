package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// Build builds the module's package pkg ("./examples/echo") into a
// temporary directory removed at cleanup and returns the program's path.
// Like Binary, call it before starting any clock. It fails the test when
// the package does not build, and skips it when no go command is on PATH.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("building %s needs the go command on PATH: %v", pkg, err)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command(gobin, "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
	return out
}

// Main is the TestMain of a package whose tests run the binary: it runs
// the tests, removes the binary, and fails the run if it passed but left
// goroutines behind (goleak). It does not return.
func Main(m *testing.M) {
	code := m.Run()
	RemoveBinary()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
