package homedir_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/p2ptun/p2ptun/config/homedir"
)

// FuzzLoadSwarmKey feeds arbitrary files to the swarm key loader: it must
// never panic, and a key it accepts is always the 32 bytes a PSK needs.
func FuzzLoadSwarmKey(f *testing.F) {
	f.Add([]byte("/key/swarm/psk/1.0.0/\n/base16/\n" + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"))
	f.Add([]byte("/key/swarm/psk/1.0.0/\n/base64/\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"))
	f.Add([]byte("/key/swarm/psk/1.0.0/\n/bin/\n0123456789abcdef0123456789abcdef"))
	f.Add([]byte("/key/swarm/psk/1.0.0/\n/base16/\nzz\n"))
	f.Add([]byte(""))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "swarm.key")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		psk, err := homedir.LoadSwarmKey(p)
		if err == nil && len(psk) != 32 {
			t.Fatalf("accepted a %d-byte key", len(psk))
		}
	})
}
