//go:build !(darwin || dragonfly || freebsd || illumos || linux || netbsd || openbsd)

package config

// lockDir is a no-op where flock does not exist: writers in this process
// still take turns (edit's mutex), but writers in other processes do not.
func lockDir(string) (func(), error) { return func() {}, nil }
