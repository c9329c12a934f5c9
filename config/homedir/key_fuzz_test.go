package homedir_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/p2ptun/p2ptun/config/homedir"
)

// FuzzLoadKey loads arbitrary bytes as a 0600 key file. LoadKey must not
// panic; a failure wraps ErrKey in one line; a success is a key that
// survives being marshalled, written and loaded again.
func FuzzLoadKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "identity.key")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		sk, err := homedir.LoadKey(path)
		if err != nil {
			if !errors.Is(err, homedir.ErrKey) {
				t.Errorf("LoadKey error does not wrap ErrKey: %v", err)
			}
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("LoadKey error is not one line: %q", err)
			}
			if sk != nil {
				t.Errorf("LoadKey returned a key with its error %v", err)
			}
			return
		}
		if sk == nil {
			t.Fatal("LoadKey returned neither a key nor an error")
		}
		// A key that loads must be usable: it signs for its own public key.
		sig, err := sk.Sign([]byte("msg"))
		if err != nil {
			t.Fatalf("a loaded key cannot sign: %v", err)
		}
		if ok, err := sk.GetPublic().Verify([]byte("msg"), sig); err != nil || !ok {
			t.Fatalf("a loaded key's signature does not verify with its public key (%v)", err)
		}
		again, err := crypto.MarshalPrivateKey(sk)
		if err != nil {
			t.Fatalf("a loaded %v key does not marshal: %v", sk.Type(), err)
		}
		path2 := filepath.Join(dir, "again.key")
		if err := os.WriteFile(path2, again, 0o600); err != nil {
			t.Fatal(err)
		}
		sk2, err := homedir.LoadKey(path2)
		if err != nil {
			t.Fatalf("a loaded %v key, marshalled again, does not load: %v", sk.Type(), err)
		}
		if !sk.Equals(sk2) {
			t.Fatalf("a loaded %v key changed on the round trip", sk.Type())
		}
	})
}
