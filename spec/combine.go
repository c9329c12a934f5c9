package spec

import ma "github.com/multiformats/go-multiaddr"

// How the kinds of tunnel combine. Each pair a user can write on one
// command line or config table either works or is refused here, at parse
// time, with what to do: never a tunnel that runs with an option silently
// ignored. What works (README "Combining options"): a UDP listener with an
// allowlist, invite-only or --allow-all; a UDP forward to several peers,
// or from a ticket (with or without an invite); a --socks forward to
// several peers. What is refused is below, and --report-peer-id with a UDP
// target or an egress, an invite or extra addresses with several peers,
// where their own fields are parsed.

// combineListen refuses a listener's options that do not go together:
// target is nil for an egress.
func combineListen(r Request, target ma.Multiaddr) error {
	switch {
	case r.ProxyProtocol != "" && IsUDP(target):
		return invalidf("a PROXY header goes before a byte stream and %s is a UDP target, whose datagrams carry no header: drop --proxy-protocol", target)
	case r.ProxyProtocol != "" && r.Egress:
		return invalidf("--proxy-protocol does not apply to an --egress listener (what it dials is named by each SOCKS request): drop --proxy-protocol")
	}
	return nil
}

// combineForward refuses a forward's options that do not go together;
// laddr is its parsed local address.
func combineForward(r Request, laddr ma.Multiaddr) error {
	if r.Socks && IsUDP(laddr) {
		return invalidf("a --socks forward is a SOCKS5 server, which takes TCP connections, and %s is a UDP address: bind a TCP address (e.g. 127.0.0.1:1080), or drop --socks", laddr)
	}
	return nil
}
