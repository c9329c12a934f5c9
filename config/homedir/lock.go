package homedir

import (
	"errors"
	"os"
)

// LockFile is the home's daemon lock (see LockDaemon).
const LockFile = "daemon.lock"

// ErrLocked is returned by LockDaemon when another daemon holds the home.
var ErrLocked = errors.New("a p2ptun daemon is already running")

// Lock is a held home lock; LockDaemon returns it.
type Lock struct{ f *os.File }
