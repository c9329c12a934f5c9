//go:build darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd

package homedir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockDaemon takes the home's daemon lock, an exclusive flock(2) on
// HOME/daemon.lock, and writes this process's ID into the file. It fails
// with ErrLocked, naming the holder's PID when the file has it, if another
// process holds the lock. The kernel drops the lock when the process ends,
// however it ends, so a daemon that died leaves nothing stale behind.
// Close the Lock to release it.
func LockDaemon(home string) (*Lock, error) {
	path := filepath.Join(home, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the home lock: %w", err)
	}
	err = flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		b, _ := os.ReadFile(path)
		_ = f.Close()
		holder := "another process"
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			holder = "pid " + strconv.Itoa(pid)
		}
		return nil, fmt.Errorf("%w: home %s is in use by %s (it holds %s): stop that daemon first, or use another --home",
			ErrLocked, home, holder, path)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Close releases the lock. It leaves the file: removing it would let a
// daemon that opened it just before lock a file no longer in the home.
func (l *Lock) Close() error { return l.f.Close() }

// lockDir takes an exclusive flock on dir, waiting for other processes
// that hold it, and returns its release. Locking the directory rather
// than a lock file leaves nothing behind in HOME.
func lockDir(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := flock(f, syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil // closing the descriptor releases the lock
}

// flock is flock(2) on f with how, retried when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// ownerGroup returns the gid that owns the file st describes.
func ownerGroup(st os.FileInfo) int {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(s.Gid)
	}
	return -1
}
