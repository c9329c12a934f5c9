package config

import (
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/spec"
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

// checkPeers checks the keys whose values are peers: each a peer ID (the
// access and relay lists) or a multiaddr ending in /p2p/ID (relays,
// bootstrap peers), or a name of [peers] that stands for one.
func (c *Config) checkPeers() error {
	a := c.Aliases()
	for _, k := range []struct {
		key  string
		vals []string
		addr bool
	}{
		{"access.allow", c.Access.Allow, false}, {"access.deny", c.Access.Deny, false},
		{"relay.allow", c.Relay.Allow, false},
		{"network.relays", c.Network.Relays, true}, {"discovery.bootstrap", c.Discovery.Bootstrap, true},
	} {
		for _, s := range k.vals {
			v, err := a.Resolve(s)
			if err != nil {
				return keyErrf(k.key, ": %s", spec.Reason(err))
			}
			if !k.addr {
				if _, err := a.Peer(s); err != nil {
					return keyErrf(k.key, ": %q is not a peer ID", s)
				}
				continue
			}
			m, err := ma.NewMultiaddr(v)
			if err == nil {
				_, err = m.ValueForProtocol(ma.P_P2P)
			}
			if err != nil {
				return keyErrf(k.key, ": %q is not a multiaddr ending in /p2p/PEER-ID", s)
			}
		}
	}
	return nil
}
