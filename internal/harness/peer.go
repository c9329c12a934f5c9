package harness

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// NewPeer returns the ID of a fresh Ed25519 key (p2ptun's key type) that
// no node has.
func NewPeer(t testing.TB) peer.ID {
	t.Helper()
	sk, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// NewPeerID is NewPeer as text, as the CLI and config take it.
func NewPeerID(t testing.TB) string {
	t.Helper()
	return NewPeer(t).String()
}
