package socks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Sentinel errors of Rules.Resolve; check them with errors.Is.
var (
	// ErrNotAllowed: no permit rule matches the destination.
	ErrNotAllowed = errors.New("destination not permitted")
	// ErrNotResolved: the destination's name did not resolve.
	ErrNotResolved = errors.New("destination name did not resolve")
	// ErrInvalidRule: a permit rule could not be parsed.
	ErrInvalidRule = errors.New("invalid permit rule")
)

// Rule is one permit rule: a destination an egress may dial. It names
// either addresses (Prefix: a CIDR, or one IP) or a host name (Name: an
// exact name, or "*.example.com" for the names under it), and a range of
// ports.
type Rule struct {
	Prefix netip.Prefix // valid for an address rule
	Name   string       // lower case, no trailing dot; for a name rule
	Lo, Hi uint16       // the ports, inclusive
}

// ParseRule parses HOST:PORTS, where HOST is a CIDR (10.0.0.0/8,
// [fd00::/8]), an IP (192.0.2.7, [::1]), a host name (db.internal) or
// names under a domain (*.internal), and PORTS is a port (22), a range
// (8000-8099) or * (any port). A host of * is refused: to permit every
// address, write 0.0.0.0/0 and [::/0], which makes the choice explicit.
func ParseRule(s string) (Rule, error) {
	host, ports, err := splitRule(s)
	if err != nil {
		return Rule{}, err
	}
	var r Rule
	if r.Lo, r.Hi, err = parsePorts(ports); err != nil {
		return Rule{}, fmt.Errorf("%w %q: %w", ErrInvalidRule, s, err)
	}
	switch {
	case host == "*":
		return Rule{}, fmt.Errorf("%w %q: a host of * would let the peer reach anything; to mean it, permit 0.0.0.0/0:%s and [::/0]:%s", ErrInvalidRule, s, ports, ports)
	case strings.Contains(host, "/"):
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return Rule{}, fmt.Errorf("%w %q: %q is not a CIDR like 10.0.0.0/8", ErrInvalidRule, s, host)
		}
		r.Prefix = unmapPrefix(p).Masked()
	default:
		if a, err := netip.ParseAddr(host); err == nil {
			if a.Zone() != "" {
				return Rule{}, fmt.Errorf("%w %q: an address with a zone is not supported", ErrInvalidRule, s)
			}
			a = a.Unmap()
			r.Prefix = netip.PrefixFrom(a, a.BitLen())
			break
		}
		name, ok := normalName(strings.TrimPrefix(host, "*."))
		if !ok {
			return Rule{}, fmt.Errorf("%w %q: %q is not a CIDR, an IP or a host name", ErrInvalidRule, s, host)
		}
		if _, err := netip.ParseAddr(name); err == nil && !strings.HasPrefix(host, "*.") {
			// "10.0.0.1." would be a name rule that prints as an IP rule.
			return Rule{}, fmt.Errorf("%w %q: %q is an IP address with a trailing dot; write it without the dot", ErrInvalidRule, s, host)
		}
		if strings.HasPrefix(host, "*.") {
			name = "*." + name
		}
		r.Name = name
	}
	return r, nil
}

// splitRule splits HOST:PORTS; an IPv6 host is in brackets.
func splitRule(s string) (host, ports string, err error) {
	if rest, ok := strings.CutPrefix(s, "["); ok {
		h, p, ok := strings.Cut(rest, "]:")
		if !ok || h == "" || p == "" {
			return "", "", fmt.Errorf("%w %q: write an IPv6 rule as [ADDR]:PORTS or [CIDR]:PORTS, e.g. [fd00::/8]:22", ErrInvalidRule, s)
		}
		return h, p, nil
	}
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || i == len(s)-1 {
		return "", "", fmt.Errorf("%w %q: write HOST:PORTS, e.g. 10.0.0.0/8:22, db.internal:5432 or localhost:8000-8099", ErrInvalidRule, s)
	}
	if strings.Contains(s[:i], ":") {
		return "", "", fmt.Errorf("%w %q: put an IPv6 address in brackets, e.g. [fd00::/8]:22", ErrInvalidRule, s)
	}
	return s[:i], s[i+1:], nil
}

func parsePorts(s string) (lo, hi uint16, err error) {
	if s == "*" {
		return 1, 65535, nil
	}
	a, b, isRange := strings.Cut(s, "-")
	l, err := parsePort(a)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return l, l, nil
	}
	h, err := parsePort(b)
	if err != nil {
		return 0, 0, err
	}
	if h < l {
		return 0, 0, fmt.Errorf("port range %s runs backwards", s)
	}
	return l, h, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 || s[0] == '+' {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535 (or a range like 8000-8099, or *)", s)
	}
	return uint16(n), nil
}

// normalName returns s as a host name in lower case without its trailing
// dot, and whether it is one: dot-separated labels of letters, digits,
// '-' and '_', none empty, at most 253 characters.
func normalName(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	if s == "" || len(s) > 253 {
		return "", false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return s, true
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// String is the rule as ParseRule reads it.
func (r Rule) String() string {
	ports := strconv.Itoa(int(r.Lo))
	switch {
	case r.Lo == 1 && r.Hi == 65535:
		ports = "*"
	case r.Hi != r.Lo:
		ports += "-" + strconv.Itoa(int(r.Hi))
	}
	if r.Name != "" {
		return r.Name + ":" + ports
	}
	host := r.Prefix.String()
	if r.Prefix.IsSingleIP() {
		host = r.Prefix.Addr().String()
	}
	if r.Prefix.Addr().Is6() {
		host = "[" + host + "]"
	}
	return host + ":" + ports
}

func (r Rule) port(p uint16) bool { return p >= r.Lo && p <= r.Hi }

// matchName reports whether name rule r matches name (normalised).
func (r Rule) matchName(name string, port uint16) bool {
	if r.Name == "" || !r.port(port) {
		return false
	}
	if suffix, ok := strings.CutPrefix(r.Name, "*"); ok {
		return strings.HasSuffix(name, suffix)
	}
	return name == r.Name
}

// matchAddr reports whether address rule r matches a.
func (r Rule) matchAddr(a netip.Addr, port uint16) bool {
	return r.Prefix.IsValid() && r.port(port) && r.Prefix.Contains(a.Unmap())
}

// Rules are an egress's permit rules. The zero value permits nothing.
type Rules []Rule

// ParseRules parses each of ss with ParseRule.
func ParseRules(ss []string) (Rules, error) {
	rs := make(Rules, 0, len(ss))
	for _, s := range ss {
		r, err := ParseRule(s)
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// Strings returns the rules as ParseRule reads them.
func (rs Rules) Strings() []string {
	if len(rs) == 0 {
		return nil
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// Lookup resolves a host name to its addresses.
type Lookup func(ctx context.Context, host string) ([]netip.Addr, error)

// DefaultLookup is the system resolver's.
func DefaultLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// Resolve decides on a request for host (a name or an IP literal) and
// port, and returns the addresses to dial, in order. An IP is permitted
// by an address rule that contains it. A name is permitted by a name rule
// that matches it, and then every address it resolves to may be dialled
// (the rule trusts the name); otherwise by address rules, which are
// checked against each address it resolves to, keeping those they
// permit. The name is resolved once, here (with lookup, DefaultLookup if
// nil), and the caller dials exactly what is returned, so that a name
// that resolves differently the second time (DNS rebinding) cannot reach
// an address that was not checked. A name no rule could permit is not
// resolved at all. The errors wrap ErrNotAllowed or ErrNotResolved.
func (rs Rules) Resolve(ctx context.Context, lookup Lookup, host string, port uint16) ([]netip.AddrPort, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		for _, r := range rs {
			if r.matchAddr(a, port) {
				return []netip.AddrPort{netip.AddrPortFrom(a, port)}, nil
			}
		}
		return nil, fmt.Errorf("%w: no --permit rule matches %s", ErrNotAllowed, netip.AddrPortFrom(a, port))
	}
	name, ok := normalName(host)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not a host name", ErrNotAllowed, host)
	}
	byName, byAddr := false, false
	for _, r := range rs {
		byName = byName || r.matchName(name, port)
		byAddr = byAddr || r.Prefix.IsValid() && r.port(port)
	}
	if !byName && !byAddr {
		return nil, fmt.Errorf("%w: no --permit rule matches %s:%d", ErrNotAllowed, name, port)
	}
	if lookup == nil {
		lookup = DefaultLookup
	}
	addrs, err := lookup(ctx, name)
	if err == nil && len(addrs) == 0 {
		err = errors.New("no addresses")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotResolved, name, err)
	}
	out := make([]netip.AddrPort, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		permitted := byName
		for _, r := range rs {
			permitted = permitted || r.matchAddr(a, port)
		}
		if permitted {
			out = append(out, netip.AddrPortFrom(a, port))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s resolves to %v, which no --permit rule matches on port %d", ErrNotAllowed, name, addrs, port)
	}
	return out, nil
}
