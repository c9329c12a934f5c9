package spec

// ParseProxyProtocol parses a listener's PROXY protocol setting: "" for
// none, "v1" or "v2" for a header of that version before the target's
// first byte. It returns the version, 0 for none.
func ParseProxyProtocol(s string) (byte, error) {
	switch s {
	case "":
		return 0, nil
	case "v1":
		return 1, nil
	case "v2":
		return 2, nil
	}
	return 0, invalidf("PROXY protocol %q: use v1 (addresses only) or v2 (addresses and the peer ID)", s)
}
