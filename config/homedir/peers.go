package homedir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// PeersFile caches the addresses of peers the node has connected to, so
// that /p2p/ID works after a restart without a lookup.
const PeersFile = "peers.json"

// maxCacheBytes bounds the cache file a node will read.
const maxCacheBytes = 4 << 20

// LoadPeerCache reads a peer address cache: peer ID → multiaddrs. A
// missing file is an empty cache.
func LoadPeerCache(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var m map[string][]string
	dec := json.NewDecoder(&limitReader{f, maxCacheBytes})
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("peer cache %s: %w", path, err)
	}
	if m == nil {
		m = map[string][]string{}
	}
	return m, nil
}

// SavePeerCache replaces the cache file atomically (mode 0600).
func SavePeerCache(path string, m map[string][]string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(path, append(b, '\n'), 0o600)
}

type limitReader struct {
	f *os.File
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("file too large")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}
