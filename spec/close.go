package spec

// CloseRequest selects the tunnels `p2ptun close` closes. Exactly one
// field must be set.
type CloseRequest struct {
	All           bool
	Protocol      string
	ListenAddress string
	TargetAddress string
}

// ParseClose checks that r sets exactly one field and returns what it
// selects: a match on a tunnel's protocol, listen address and target
// address (addresses compared in their canonical multiaddr form).
func ParseClose(r CloseRequest) (match func(proto, listen, target string) bool, err error) {
	set := 0
	for _, b := range []bool{r.All, r.Protocol != "", r.ListenAddress != "", r.TargetAddress != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		return nil, invalidf("choose exactly one of -a, -p PROTO, -l LISTEN-ADDR, -t TARGET")
	}
	switch {
	case r.Protocol != "":
		return func(proto, _, _ string) bool { return proto == r.Protocol }, nil
	case r.ListenAddress != "":
		want, err := ParseAddr(r.ListenAddress)
		if err != nil {
			return nil, err
		}
		return func(_, listen, _ string) bool { return listen == want.String() }, nil
	case r.TargetAddress != "":
		want, err := ParseAddr(r.TargetAddress)
		if err != nil {
			return nil, err
		}
		return func(_, _, target string) bool { return target == want.String() }, nil
	}
	return func(string, string, string) bool { return true }, nil
}
