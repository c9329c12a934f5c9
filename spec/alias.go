package spec

import (
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Aliases are names for peers, like ssh's Host: each name stands for a
// peer address (/p2p/ID, a bare ID, or a full multiaddr ending in
// /p2p/ID) wherever a PEER is written: a forward's or pipe's peer, a
// forward's peers, a listener's allowlist, ping, access. They come from
// config.toml's [peers] table; a name is resolved when its spec is parsed,
// so a tunnel keeps the peer it resolved to until it is opened again (a
// reload reopens config tunnels whose names now resolve elsewhere).
type Aliases map[string]string

// ErrUnknownName is a PEER that has the form of a name but is not one of
// the aliases. It is ErrInvalid too; a client that does not know the
// daemon's aliases leaves such a PEER for the daemon to resolve.
var ErrUnknownName = errors.New("unknown peer name")

// maxNameLen is the longest alias.
const maxNameLen = 63

// CheckName says why name cannot be an alias, or nil: a name starts with
// a letter, then letters, digits, '-' or '_' (a bare TOML key), up to 63
// bytes, and is
// neither a peer ID nor the start of one (12D3KooW…, Qm…), so it can never
// be taken for a peer.
func CheckName(name string) error {
	if _, err := peer.Decode(name); err == nil || strings.HasPrefix(name, "12D3Koo") || strings.HasPrefix(name, "Qm") {
		return invalidf("peer name %q looks like a peer ID: choose a name that does not start with 12D3Koo or Qm", name)
	}
	if !isName(name) {
		return invalidf("peer name %q must start with a letter, then letters, digits, '-' or '_', up to %d characters", name, maxNameLen)
	}
	return nil
}

// isName reports whether s has the form of an alias.
func isName(s string) bool {
	if s == "" || len(s) > maxNameLen || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// ParseAliases checks every name and address of m and returns them as
// Aliases.
func ParseAliases(m map[string]string) (Aliases, error) {
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if err := CheckName(name); err != nil {
			return nil, err
		}
		if _, err := ParsePeerAddr(m[name]); err != nil {
			return nil, invalidf("peer name %s: %s", name, Reason(err))
		}
	}
	return Aliases(maps.Clone(m)), nil
}

// Resolve returns the peer address that s stands for: s itself unless it
// is one of a's names; an error (ErrUnknownName) for a name a lacks.
func (a Aliases) Resolve(s string) (string, error) {
	if strings.HasPrefix(s, "/") || !isName(s) {
		return s, nil
	}
	if addr, ok := a[s]; ok {
		return addr, nil
	}
	if _, err := peer.Decode(s); err == nil {
		return s, nil
	}
	return "", &Error{
		Reason:  "no peer is named " + quote(s) + ": name it with `p2ptun peer add " + s + " PEER-ADDR` (see `p2ptun peer ls`), or give its peer ID",
		unknown: true,
	}
}

// PeerAddr is ParsePeerAddr of s, or of the address s names.
func (a Aliases) PeerAddr(s string) (peer.AddrInfo, error) {
	addr, err := a.Resolve(s)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	return ParsePeerAddr(addr)
}

// Peer is ParsePeer of s, or the peer ID of the address s names.
func (a Aliases) Peer(s string) (peer.ID, error) {
	addr, err := a.Resolve(s)
	if err != nil {
		return "", err
	}
	if addr == s {
		return ParsePeer(s)
	}
	pi, err := ParsePeerAddr(addr)
	return pi.ID, err
}

// NameOf is the name of the peer id (the first in order, if several name
// it), or "" if none does.
func (a Aliases) NameOf(id peer.ID) string {
	if len(a) == 0 || id == "" {
		return ""
	}
	for _, name := range slices.Sorted(maps.Keys(a)) {
		if pi, err := ParsePeerAddr(a[name]); err == nil && pi.ID == id {
			return name
		}
	}
	return ""
}

// NameOfString is NameOf of a peer ID in its text form, or of the peer of
// a peer address (/p2p/ID); "" for anything else.
func (a Aliases) NameOfString(s string) string {
	if len(a) == 0 || s == "" {
		return ""
	}
	pi, err := ParsePeerAddr(s)
	if err != nil {
		return ""
	}
	return a.NameOf(pi.ID)
}

// used are the names of r.Aliases that r's peers use; nil if none.
func (r Request) used() Aliases {
	var out Aliases
	for _, s := range slices.Concat([]string{r.Peer}, r.Peers, r.Allow) {
		if addr, ok := r.Aliases[s]; ok && isName(s) {
			if out == nil {
				out = Aliases{}
			}
			out[s] = addr
		}
	}
	return out
}

func quote(s string) string { return `"` + s + `"` }
