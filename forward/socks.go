package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	socks5 "github.com/armon/go-socks5"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/p2ptun/p2ptun/peerdial"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/socks"
	seam "github.com/p2ptun/p2ptun/tunnel"
)

// errSocksCommand is a SOCKS request other than CONNECT.
var errSocksCommand = errors.New("only CONNECT is supported")

// socksAccept is a SOCKS forward's handshake with client c (origin), before
// any stream is opened: no authentication, then the client's request,
// which must be a CONNECT. Its name, if it has one, is not resolved here:
// the peer's egress resolves it. It is bounded by the stream open
// timeout. On failure c has been answered (if it spoke SOCKS5) and
// closed.
func (f *Forward) socksAccept(c net.Conn, origin string) (*socks.Request, error) {
	_ = c.SetDeadline(time.Now().Add(f.cfg.StreamOpenTimeout))
	req, err := socks.Accept(c)
	cause := socks.CauseHandshake
	if err == nil && req.Command != socks5.ConnectCommand {
		_ = socks.WriteReply(c, socks.CommandNotSupported, netip.AddrPort{})
		err, cause = errSocksCommand, socks.Cause(socks.CommandNotSupported)
	}
	_ = c.SetDeadline(time.Time{})
	if err != nil {
		f.cfg.Limited.Warn("socks client "+f.laddr(), "SOCKS client handshake failed; connection closed",
			"proto", string(f.cfg.Protocol), "laddr", f.laddr(), "client", origin, "err", err)
		_ = c.Close()
		return nil, &seam.Failure{Peer: f.peer, Cause: cause, Err: err}
	}
	return req, nil
}

// socksConnect sends req at the start of stream s, reads the peer's
// verdict and relays it to client c; it returns the destination,
// host:port. A refusal (a reply code, or a reset with a cause from a peer
// that is not an egress) is logged with its reason once per interval,
// relayed to the client as a SOCKS reply, and returned as a Failure with
// its cause; s and c are then closed.
func (f *Forward) socksConnect(s network.Stream, c net.Conn, req *socks.Request) (string, error) {
	dest := socksDest(req)
	_ = s.SetDeadline(time.Now().Add(f.cfg.StreamOpenTimeout))
	err := socks.WriteRequest(s, req)
	code, bound := socks.GeneralFailure, netip.AddrPort{}
	if err == nil {
		code, bound, err = socks.ReadReply(s)
	}
	_ = s.SetDeadline(time.Time{})
	if err == nil && code == socks.Succeeded {
		if err = socks.WriteReply(c, socks.Succeeded, bound); err == nil {
			return dest, nil
		}
	}
	cause, reason := socks.Cause(code), socks.Meaning(code)
	verdict := err == nil // the peer answered with a failure code
	switch r := refusal.Of(err); {
	case verdict:
		err = errors.New(reason)
	case r != nil:
		cause, reason = string(r.Cause), r.Error()
	case code == socks.Succeeded:
		cause, reason = "reset", "the client went away"
	default:
		cause, reason = socks.CauseHandshake, "the peer did not answer the SOCKS request (is its listener an --egress?)"
	}
	f.cfg.Limited.Warn("socks "+cause+" "+f.laddr()+" "+dest, "SOCKS request refused; client connection closed",
		"proto", string(f.cfg.Protocol), "peer", f.peer, "laddr", f.laddr(), "dest", dest,
		"cause", cause, "reply", code, "reason", reason)
	if verdict {
		_ = s.Close()
		_ = socks.WriteReply(c, code, netip.AddrPort{})
		_ = c.Close()
	} else {
		_ = s.Reset()
		refuseSocks(c, err)
	}
	return "", &seam.Failure{Peer: f.peer, Cause: cause, Err: fmt.Errorf("%s: %w", dest, err)}
}

// socksDest is the destination req asks for, host:port, as the logs,
// the stream record and the events name it.
func socksDest(req *socks.Request) string {
	host, port := socks.Address(req)
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// refuseSocks answers a SOCKS client whose stream could not be opened or
// failed, with the reply code closest to err, and closes it cleanly so
// that the reply is read (a reset could discard it).
func refuseSocks(c net.Conn, err error) {
	code := socks.GeneralFailure
	switch r := refusal.Of(err); {
	case r != nil && (r.Cause == refusal.Denied || r.Cause == refusal.RateLimited):
		code = socks.NotAllowed
	case errors.Is(err, peerdial.ErrUnreachable):
		code = socks.NetworkUnreachable
	}
	_ = socks.WriteReply(c, code, netip.AddrPort{})
	_ = c.Close()
}
