package spec

import (
	"errors"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/socks"
)

// parseEgress checks a listener's SOCKS egress fields and parses its
// permit rules. An egress with no rule is refused rather than run
// permitting nothing.
func parseEgress(r Request) (socks.Rules, error) {
	if !r.Egress {
		if len(r.Permit) > 0 {
			return nil, invalidf("--permit applies only to an --egress listener: add --egress (and drop the target), or drop --permit")
		}
		return nil, nil
	}
	switch {
	case r.Target != "":
		return nil, invalidf("an --egress listener dials what each SOCKS request names, not a target: drop the target %q", r.Target)
	case r.ReportPeerID:
		return nil, invalidf("--report-peer-id does not apply to an --egress listener: drop it")
	case len(r.Permit) == 0:
		return nil, invalidf("an --egress listener permits nothing by default: pass --permit HOST:PORTS (repeatable), e.g. --permit 10.0.0.0/8:22 --permit db.internal:5432")
	}
	rules, err := socks.ParseRules(r.Permit)
	if errors.Is(err, socks.ErrInvalidRule) {
		return nil, invalidf("%s", err)
	}
	return rules, err
}

// checkSocks checks a forward's SOCKS fields against its bind address
// laddr: an unauthenticated SOCKS server binds a loopback address unless
// the user says otherwise, as ssh -D does without GatewayPorts.
func checkSocks(r Request, laddr ma.Multiaddr) error {
	if !r.Socks {
		if r.Gateway {
			return invalidf("--gateway applies only to a --socks forward: add --socks, or drop --gateway")
		}
		return nil
	}
	if r.Gateway {
		return nil
	}
	if ip, err := manet.ToIP(laddr); err != nil || !ip.IsLoopback() {
		return invalidf("a --socks forward has no authentication, so anyone who can reach %s could use the peer's egress: bind a loopback address (e.g. 127.0.0.1:1080), or pass --gateway to mean it", laddr)
	}
	return nil
}
