//go:build !unix

package cli

import (
	"errors"
	"os"
)

// readKeys is not supported here: top quits on Ctrl-C (SIGINT) only.
func readKeys(*os.File) (<-chan byte, func(), error) {
	return nil, nil, errors.New("reading keys is supported on Unix only")
}
