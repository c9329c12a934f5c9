package homedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/p2ptun/p2ptun/config"
)

// writers holds one mutex per config file (by resolved absolute path), so
// that the daemon's writers (`access`, `listen --save`, `forward --save`)
// take turns; lockDir adds a lock on the file's directory for writers in
// other processes.
var writers sync.Map // string -> *sync.Mutex

// edit rewrites the config file at path with change, which gets the
// current content (DefaultConfig if there is no file) and returns the new
// one, or an error to leave the file alone. One writer at a time, in this
// process and across processes (where flock exists), reads, changes and
// atomically replaces the file, so that no writer's change is lost. A
// symlinked path is written through to its target, which stays where it
// is: the link is not replaced by a plain file.
func edit(path string, change func([]byte) ([]byte, error)) error {
	target, err := resolve(path)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", config.ErrInvalid, path, err)
	}
	mu, _ := writers.LoadOrStore(target, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	unlock, err := lockDir(filepath.Dir(target))
	if err != nil {
		return fmt.Errorf("locking the config file's directory: %w", err)
	}
	defer unlock()

	mode := fs.FileMode(0o600)
	b, err := os.ReadFile(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		b = []byte(DefaultConfig)
	case err != nil:
		return config.ReadError(path, err)
	default:
		if st, err := os.Stat(target); err == nil {
			mode = st.Mode().Perm()
		}
	}
	out, err := change(b)
	if err != nil {
		return err
	}
	return writeAtomic(target, out, mode)
}

// resolve follows symbolic links from path to the file they lead to (which
// may not exist yet), as an absolute path.
func resolve(path string) (string, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	for range 40 {
		st, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		dst, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(dst) {
			dst = filepath.Join(filepath.Dir(path), dst)
		}
		path = dst
	}
	return "", errors.New("too many levels of symbolic links")
}
