package homedir

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/p2ptun/p2ptun/config"
)

// ErrKey wraps every problem with the identity key file.
var ErrKey = errors.New("key file")

// ErrInitialized is returned by Init when the home already has an identity.
var ErrInitialized = errors.New("already initialized")

// GenerateKey returns a new Ed25519 identity.
func GenerateKey() (crypto.PrivKey, error) {
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	return sk, err
}

// LoadKey reads the identity key at path. It refuses a file that is
// readable or writable by group or others, and says how to fix it.
func LoadKey(path string) (crypto.PrivKey, error) {
	b, err := readSecret(path, "run `p2ptun init` to create an identity")
	if err != nil {
		return nil, err
	}
	sk, err := crypto.UnmarshalPrivateKey(b)
	if err == nil {
		err = usable(sk)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s is corrupt (%v): restore it from a backup, or move it away and run `p2ptun init` for a new identity", ErrKey, path, err)
	}
	return sk, nil
}

// readSecret reads a small secret file (at most 4 KiB) that only its owner
// may access. ifMissing tells the user what to do when it does not exist.
func readSecret(path, ifMissing string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist: %s", ErrKey, path, ifMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	defer f.Close()
	if err := checkPrivate(f, path); err != nil {
		return nil, err
	}
	b, err := readAll(f, 4096)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrKey, path, err)
	}
	return b, nil
}

// checkPrivate refuses a secret file that group or others can access.
func checkPrivate(f *os.File, path string) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrKey, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s is accessible by others (mode %04o): run `chmod 600 %s`", ErrKey, path, perm, path)
	}
	return nil
}

func readAll(f *os.File, limit int64) ([]byte, error) {
	b := make([]byte, limit+1)
	n, err := f.Read(b)
	if err != nil && n == 0 {
		return nil, err
	}
	if int64(n) > limit {
		return nil, fmt.Errorf("file larger than %d bytes", limit)
	}
	return b[:n], nil
}

// usable proves sk can sign for its own public key. An Ed25519 key file
// stores the public half next to the seed, and go-libp2p does not check
// that they match: a damaged public half would load as a different,
// useless identity.
func usable(sk crypto.PrivKey) error {
	msg := []byte("p2ptun identity check")
	sig, err := sk.Sign(msg)
	if err != nil {
		return err
	}
	if ok, err := sk.GetPublic().Verify(msg, sig); err != nil || !ok {
		return errors.New("its public and private halves do not match")
	}
	return nil
}

// WriteKey writes sk to path with mode 0600, refusing to overwrite.
func WriteKey(path string, sk crypto.PrivKey) error {
	b, err := crypto.MarshalPrivateKey(sk)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// Init creates home (0700), a new identity key (0600) and the default
// config file. It refuses to touch a home that already has an identity key,
// and leaves an existing config.toml as it is.
func Init(home string) (crypto.PrivKey, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", home, err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(home, config.ConfigFile)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	keyPath := cfg.KeyPath(home)
	if _, err := os.Lstat(keyPath); err == nil {
		return nil, fmt.Errorf("%s %w: identity %s exists and is never overwritten", home, ErrInitialized, keyPath)
	}
	sk, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := WriteKey(keyPath, sk); err != nil {
		return nil, fmt.Errorf("writing identity: %w", err)
	}
	if _, err := os.Stat(cfgPath); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(cfgPath, []byte(DefaultConfig), 0o600); err != nil {
			return nil, fmt.Errorf("writing config: %w", err)
		}
	}
	return sk, nil
}

// Check refuses a home directory that group or others can access: it
// holds the identity key, the config and the API socket. The one
// exception is the [api] group apiGID (-1 for none), which may read and
// search it (0750) to reach the socket; the files inside stay 0600.
func Check(home string, apiGID int) error {
	st, err := os.Stat(home)
	if err != nil {
		return fmt.Errorf("%w: home %s: %w", config.ErrInvalid, home, err)
	}
	perm := st.Mode().Perm()
	if apiGID >= 0 && perm&0o027 == 0 && ownerGroup(st) == apiGID {
		return nil
	}
	if perm&0o077 != 0 {
		return fmt.Errorf("%w: home %s is accessible by others (mode %04o): run `chmod 700 %s`", config.ErrInvalid, home, perm, home)
	}
	return nil
}

// IsInitialized reports whether home holds an identity key.
func IsInitialized(home string) bool {
	cfg, err := config.Load(filepath.Join(home, config.ConfigFile))
	if err != nil {
		return true // a broken config is reported by whoever loads it next
	}
	_, err = os.Lstat(cfg.KeyPath(home))
	return err == nil
}
