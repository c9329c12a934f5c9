//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package homedir

import "os"

// LockDaemon takes no lock on systems without flock(2): there, only the API
// socket's presence keeps a second daemon off a home.
func LockDaemon(home string) (*Lock, error) { return &Lock{}, nil }

// Close releases the lock.
func (l *Lock) Close() error { return nil }

// lockDir is a no-op where flock does not exist: writers in this process
// still take turns (edit's mutex), but writers in other processes do not.
func lockDir(string) (func(), error) { return func() {}, nil }

// ownerGroup does not know file groups on this system: no group is
// trusted with the home.
func ownerGroup(os.FileInfo) int { return -2 }
