package homedir

import (
	"bytes"
	"fmt"

	"github.com/libp2p/go-libp2p/core/pnet"

	"github.com/p2ptun/p2ptun/oneline"
)

// LoadSwarmKey reads a kubo-format swarm.key ("/key/swarm/psk/1.0.0/",
// "/base16/", 64 hex digits). Like the identity key it must be readable by
// its owner only.
func LoadSwarmKey(path string) (pnet.PSK, error) {
	b, err := readSecret(path, "copy the network's swarm.key there, or unset network.swarm_key")
	if err != nil {
		return nil, err
	}
	psk, err := pnet.DecodeV1PSK(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: swarm key %s is not in swarm.key format (%s); it must be three lines: /key/swarm/psk/1.0.0/, /base16/, and 64 hex digits", ErrKey, path, oneline.Error(err))
	}
	return psk, nil
}
