package homedir_test

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDefaultConfigParsesToDefault(t *testing.T) {
	got, err := config.Parse(config.ConfigFile, []byte(homedir.DefaultConfig))
	if err != nil {
		t.Fatalf("Parse(DefaultConfig): %v", err)
	}
	if want := config.Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(DefaultConfig) = %+v, want Default() = %+v", got, want)
	}
}

func TestAppendTunnelKeepsTheFileAndRefusesInvalid(t *testing.T) {
	const peerID = "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
	path := filepath.Join(t.TempDir(), "config.toml")
	orig := "# my notes\n[timeouts]\ndial = \"3s\"\n"
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := homedir.AppendListen(path, config.ListenTunnel{Protocol: "/x/web", Target: "127.0.0.1:8080", AllowAll: true}); err != nil {
		t.Fatal(err)
	}
	if err := homedir.AppendForward(path, config.ForwardTunnel{Name: "db", Protocol: "/x/db", Listen: "127.0.0.1:5432", Peer: peerID}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), orig) {
		t.Fatalf("the file's own lines were not kept:\n%s", b)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listen) != 1 || c.Listen[0].Target != "127.0.0.1:8080" || !c.Listen[0].AllowAll ||
		len(c.Forward) != 1 || c.Forward[0].Name != "db" || c.Timeouts.Dial.Std() != 3*time.Second {
		t.Fatalf("after appending: %+v %+v", c.Listen, c.Forward)
	}
	// A second listener on /x/web would make the file invalid: refused,
	// and the file is unchanged.
	err = homedir.AppendListen(path, config.ListenTunnel{Protocol: "/x/web", Target: "127.0.0.1:1", AllowAll: true})
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "already served") {
		t.Fatalf("appending a duplicate = %v, want ErrInvalid naming the clash", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(b) {
		t.Fatal("a refused append changed the file")
	}
}

func perm(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	sk, err := homedir.Init(dir)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	if sk == nil {
		t.Fatal("Init returned a nil key")
	}
	if got := perm(t, dir); got != 0o700 {
		t.Errorf("home mode = %04o, want 0700", got)
	}
	keyPath := filepath.Join(dir, config.KeyFile)
	if got := perm(t, keyPath); got != 0o600 {
		t.Errorf("key mode = %04o, want 0600", got)
	}
	cfgBytes, err := os.ReadFile(filepath.Join(dir, config.ConfigFile))
	if err != nil {
		t.Fatalf("reading config.toml: %v", err)
	}
	if string(cfgBytes) != homedir.DefaultConfig {
		t.Errorf("config.toml = %q, want DefaultConfig", cfgBytes)
	}
	if !homedir.IsInitialized(dir) {
		t.Error("IsInitialized = false after Init")
	}

	loaded, err := homedir.LoadKey(keyPath)
	if err != nil {
		t.Fatalf("LoadKey: %v", err)
	}
	if loaded.Type() != crypto.Ed25519 {
		t.Errorf("key type = %v, want Ed25519", loaded.Type())
	}
	want, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := peer.IDFromPrivateKey(loaded)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("peer ID from key file = %s, Init returned %s", got, want)
	}

	before, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	sk2, err := homedir.Init(dir)
	if !errors.Is(err, homedir.ErrInitialized) {
		t.Fatalf("second Init = %v, want ErrInitialized", err)
	}
	if sk2 != nil {
		t.Error("second Init returned a key")
	}
	after, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("second Init changed the key file")
	}
}

func TestInitFixesHomeMode(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := homedir.Init(dir); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if got := perm(t, dir); got != 0o700 {
		t.Errorf("home mode = %04o, want 0700", got)
	}
}

func TestInitKeepsExistingConfig(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, config.ConfigFile)
	custom := "[identity]\nkey_file = \"other.key\"\n"
	if err := os.WriteFile(cfgPath, []byte(custom), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := homedir.Init(dir); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if got, _ := os.ReadFile(cfgPath); string(got) != custom {
		t.Errorf("config.toml = %q, want it untouched %q", got, custom)
	}
	if _, err := homedir.LoadKey(filepath.Join(dir, "other.key")); err != nil {
		t.Errorf("Init did not write the configured key file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, config.KeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Init wrote the default key file too (stat err %v)", err)
	}
}

func writeFile(t *testing.T, b []byte, mode fs.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), config.KeyFile)
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; set it exactly.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func validKeyBytes(t *testing.T) []byte {
	t.Helper()
	sk, err := homedir.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := crypto.MarshalPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadKeyRejects(t *testing.T) {
	garbage := make([]byte, 64)
	rand.NewChaCha8([32]byte{'p', '2', 'p'}).Read(garbage)

	tests := []struct {
		name string
		path func(t *testing.T) string
		want []string
	}{
		{
			name: "mode 0644",
			path: func(t *testing.T) string { return writeFile(t, validKeyBytes(t), 0o644) },
			want: []string{"chmod 600", "0644"},
		},
		{
			name: "mode 0640",
			path: func(t *testing.T) string { return writeFile(t, validKeyBytes(t), 0o640) },
			want: []string{"chmod 600", "0640"},
		},
		{
			name: "mode 0604",
			path: func(t *testing.T) string { return writeFile(t, validKeyBytes(t), 0o604) },
			want: []string{"chmod 600"},
		},
		{
			name: "corrupt",
			path: func(t *testing.T) string { return writeFile(t, garbage, 0o600) },
			want: []string{"corrupt"},
		},
		{
			name: "empty",
			path: func(t *testing.T) string { return writeFile(t, nil, 0o600) },
		},
		{
			name: "missing",
			path: func(t *testing.T) string { return filepath.Join(t.TempDir(), config.KeyFile) },
			want: []string{"does not exist", "p2ptun init"},
		},
		{
			name: "larger than 4096 bytes",
			path: func(t *testing.T) string {
				// A valid key followed by padding: only the size is wrong.
				b := append(validKeyBytes(t), make([]byte, 4097)...)
				return writeFile(t, b, 0o600)
			},
			want: []string{"larger than 4096"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path(t)
			sk, err := homedir.LoadKey(path)
			if err == nil {
				t.Fatalf("LoadKey(%s) = %v, want error", path, sk)
			}
			if sk != nil {
				t.Errorf("LoadKey returned a key with error %v", err)
			}
			if !errors.Is(err, homedir.ErrKey) {
				t.Errorf("error %q does not wrap ErrKey", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error %q does not name %s", msg, path)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestLoadKeyAcceptsOwnerOnly(t *testing.T) {
	for _, mode := range []fs.FileMode{0o600, 0o400} {
		path := writeFile(t, validKeyBytes(t), mode)
		if _, err := homedir.LoadKey(path); err != nil {
			t.Errorf("LoadKey with mode %04o: %v", mode, err)
		}
	}
}

func TestWriteKeyRefusesOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), config.KeyFile)
	sk, err := homedir.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := homedir.WriteKey(path, sk); err != nil {
		t.Fatalf("WriteKey: %v", err)
	}
	before, _ := os.ReadFile(path)
	other, err := homedir.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := homedir.WriteKey(path, other); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second WriteKey = %v, want fs.ErrExist", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("second WriteKey changed the file")
	}
}
