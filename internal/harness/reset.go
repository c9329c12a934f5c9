package harness

import (
	"errors"
	"syscall"
)

// IsReset reports whether err is a TCP reset: how a tunnel's client sees a
// refused or broken stream.
func IsReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
