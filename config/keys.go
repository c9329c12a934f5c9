package config

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// The checks that several keys share; Validate and its parts use them.

// durationKey is a duration key: negative is an error, zero takes def,
// and below min (after that) is an error.
type durationKey struct {
	name string
	v    *Duration
	def  Duration
	min  time.Duration
}

func (k durationKey) fill() error {
	if k.v.Duration < 0 {
		return keyErrf(k.name, " must not be negative")
	}
	if k.v.Duration == 0 {
		*k.v = k.def
	}
	if k.v.Duration < k.min {
		return keyErrf(k.name, " = %q is too short: use at least %q (or 0s for the default, %q)", k.v.Duration, k.min, k.def.Duration)
	}
	return nil
}

// intKey is a count key: negative is an error, zero takes def.
type intKey struct {
	name string
	v    *int
	def  int
}

func (k intKey) fill() error {
	if *k.v < 0 {
		return keyErrf(k.name, " must not be negative")
	}
	if *k.v == 0 {
		*k.v = k.def
	}
	return nil
}

// fill fills and checks keys in order, stopping at the first error.
func fill[K interface{ fill() error }](keys []K) error {
	for _, k := range keys {
		if err := k.fill(); err != nil {
			return err
		}
	}
	return nil
}

// peerIDs checks that each of ids, the value of the key name, is a peer ID.
func peerIDs(name string, ids []string) error {
	for _, s := range ids {
		if _, err := peer.Decode(s); err != nil {
			return keyErrf(name, ": %q is not a peer ID", s)
		}
	}
	return nil
}

// peerAddrs checks that each of addrs, the value of the key name, is a
// multiaddr ending in /p2p/ID.
func peerAddrs(name string, addrs []string) error {
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err == nil {
			_, err = m.ValueForProtocol(ma.P_P2P)
		}
		if err != nil {
			return keyErrf(name, ": %q is not a multiaddr ending in /p2p/PEER-ID", a)
		}
	}
	return nil
}
