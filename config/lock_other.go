//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package config

// LockHome takes no lock on systems without flock(2): there, only the API
// socket's presence keeps a second daemon off a home.
func LockHome(home string) (*Lock, error) { return &Lock{}, nil }

// Close releases the lock.
func (l *Lock) Close() error { return nil }
