package homedir_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
)

// loadTunnels parses the file at path and returns its [[listen]]
// protocols.
func loadTunnels(t *testing.T, path string) (config.Config, map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(path, b)
	if err != nil {
		t.Fatalf("the file does not parse after concurrent writes: %v\n%s", err, b)
	}
	got := map[string]bool{}
	for _, l := range c.Listen {
		got[l.Protocol] = true
	}
	return c, got
}

func listenTunnel(proto string) config.ListenTunnel {
	return config.ListenTunnel{Protocol: proto, Target: "127.0.0.1:8080", AllowAll: true}
}

// Twenty `listen --save` beside twenty `access deny` in one daemon: every
// table is kept.
func TestConcurrentWritersKeepEveryTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	const n = 20
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs <- homedir.AppendListen(path, listenTunnel(fmt.Sprintf("/x/t%d", i))) })
		wg.Go(func() { errs <- homedir.SaveAccess(path, config.Access{Deny: []string{peerA}}) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	c, got := loadTunnels(t, path)
	for i := range n {
		if p := fmt.Sprintf("/x/t%d", i); !got[p] {
			t.Errorf("lost the [[listen]] of %s (%d of %d kept)", p, len(got), n)
		}
	}
	if len(c.Access.Deny) != 1 {
		t.Errorf("access = %+v, want deny [peerA]", c.Access)
	}
}

// TestWriterProcess is not a test: TestWritersInOtherProcesses runs the
// test binary with it to append tables from another process.
func TestWriterProcess(t *testing.T) {
	path, prefix := os.Getenv("P2PTUN_TEST_WRITER_PATH"), os.Getenv("P2PTUN_TEST_WRITER_PREFIX")
	if path == "" {
		t.Skip("only run by TestWritersInOtherProcesses")
	}
	count, _ := strconv.Atoi(os.Getenv("P2PTUN_TEST_WRITER_COUNT"))
	for i := range count {
		if err := homedir.AppendListen(path, listenTunnel(fmt.Sprintf("%s%d", prefix, i))); err != nil {
			t.Fatal(err)
		}
	}
}

// Writers in other processes (another `p2ptun` beside the daemon) take
// turns with this one through the directory lock.
func TestWritersInOtherProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	const procs, each = 4, 10
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriterProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "P2PTUN_TEST_WRITER_PATH="+path,
			fmt.Sprintf("P2PTUN_TEST_WRITER_PREFIX=/x/p%d-", i), fmt.Sprintf("P2PTUN_TEST_WRITER_COUNT=%d", each))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i := range each {
		if err := homedir.AppendListen(path, listenTunnel(fmt.Sprintf("/x/parent-%d", i))); err != nil {
			t.Error(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writer process %d: %v", i, err)
		}
	}
	_, got := loadTunnels(t, path)
	if len(got) != (procs+1)*each {
		t.Fatalf("%d of %d [[listen]] tables kept", len(got), (procs+1)*each)
	}
}

// A symlinked config.toml (kept in a dotfiles repository, say) stays a
// link: the edit is written to its target.
func TestSymlinkedConfigIsWrittenThrough(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exists bool
	}{{"target exists", true}, {"target not yet there", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "dotfiles"), 0o700); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(dir, "dotfiles", "p2ptun.toml")
			if tc.exists {
				if err := os.WriteFile(target, []byte("# mine\n"), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			link := filepath.Join(dir, "config.toml")
			if err := os.Symlink(filepath.Join("dotfiles", "p2ptun.toml"), link); err != nil {
				t.Fatal(err)
			}
			if err := homedir.SaveAccess(link, config.Access{Allow: []string{peerA}}); err != nil {
				t.Fatal(err)
			}
			if err := homedir.AppendListen(link, listenTunnel("/x/web")); err != nil {
				t.Fatal(err)
			}
			if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("config.toml is no longer a symlink: %v, %v", st.Mode(), err)
			}
			c, got := loadTunnels(t, target)
			if !got["/x/web"] || len(c.Access.Allow) != 1 {
				t.Fatalf("the target lacks the edits: %+v %v", c.Access, got)
			}
			want := os.FileMode(0o600)
			if tc.exists {
				want = 0o640 // the owner's choice is kept
			}
			if st, _ := os.Stat(target); st.Mode().Perm() != want {
				t.Errorf("target mode %v, want %v", st.Mode().Perm(), want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 2 {
				t.Errorf("files left beside the link: %v", entries)
			}
		})
	}
}
