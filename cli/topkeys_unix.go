//go:build unix

package cli

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/term"
)

// readKeys puts the terminal f in raw mode and returns the keys pressed
// on it. stop ends the reader (a deadline on its own non-blocking copy of
// f, so nothing is left blocked in a read), waits for it, and restores
// f's mode; call it once.
func readKeys(f *os.File) (keys <-chan byte, stop func(), err error) {
	old, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return nil, nil, err
	}
	restore := func() { _ = term.Restore(int(f.Fd()), old) }
	fd, err := syscall.Dup(int(f.Fd()))
	if err == nil {
		err = syscall.SetNonblock(fd, true)
		if err != nil {
			syscall.Close(fd)
		}
	}
	if err != nil {
		restore()
		return nil, nil, err
	}
	in := os.NewFile(uintptr(fd), f.Name()) // non-blocking: pollable, so a deadline ends a read
	ch := make(chan byte, 16)
	done := make(chan struct{})
	go readKeysFrom(in, ch, done)
	return ch, func() {
		_ = in.SetReadDeadline(time.Now())
		<-done
		_ = syscall.SetNonblock(fd, false) // the flag is shared with f's description
		in.Close()
		restore()
	}, nil
}

// readKeysFrom sends the bytes read from in to ch, dropping those ch has
// no room for, until a read fails; then it closes ch and done.
func readKeysFrom(in *os.File, ch chan<- byte, done chan<- struct{}) {
	defer close(done)
	defer close(ch)
	buf := make([]byte, 16)
	for {
		n, err := in.Read(buf)
		for _, b := range buf[:n] {
			select {
			case ch <- b:
			default:
			}
		}
		if err != nil {
			return
		}
	}
}
