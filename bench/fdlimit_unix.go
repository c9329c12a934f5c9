//go:build unix

package main

import "syscall"

// raiseFDLimit raises this process's open-file limit to its hard limit,
// which the daemons, socat and the target inherit, and returns it. The
// conversion is for FreeBSD, whose rlimit fields are signed.
func raiseFDLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	l.Cur = l.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	return uint64(l.Max)
}
