package listen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	socks5 "github.com/armon/go-socks5"
	"github.com/libp2p/go-libp2p/core/network"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/p2ptun/p2ptun/registry"
	"github.com/p2ptun/p2ptun/socks"
	"github.com/p2ptun/p2ptun/streams"
	seam "github.com/p2ptun/p2ptun/tunnel"
)

// errCommand is a SOCKS request other than CONNECT.
var errCommand = errors.New("only CONNECT is supported")

// openEgress is the Opener of a SOCKS egress (Config.Egress), for stream
// s from peer who, once the peer has been let in: it reads the SOCKS5
// request the stream starts with (bounded by the dial timeout), checks
// its destination against the permit rules, resolving a name once and
// dialling the addresses it checked, and answers with a SOCKS5 reply
// before any data. A refusal is a reply with its code (not allowed, host
// unreachable, refused, …) followed by a clean close, logged with the
// peer and destination once per interval.
func (l *Listener) openEgress(ctx context.Context, s network.Stream, who string) (*seam.Link, error) {
	_ = s.SetReadDeadline(time.Now().Add(l.cfg.DialTimeout))
	req, err := socks.ReadRequest(s)
	_ = s.SetReadDeadline(time.Time{})
	if err != nil {
		l.cfg.Limited.Warn("egress request "+who, "SOCKS egress: the stream did not start with a SOCKS5 request; stream reset",
			"peer", who, "proto", string(l.cfg.Protocol), "err", err)
		_ = s.Reset()
		return nil, &seam.Failure{Peer: who, Cause: socks.CauseHandshake, Err: err}
	}
	host, port := socks.Address(req)
	dest := net.JoinHostPort(host, strconv.Itoa(int(port)))

	var conn net.Conn
	code := socks.CommandNotSupported
	err = errCommand
	if req.Command == socks5.ConnectCommand {
		dctx, cancel := context.WithTimeout(ctx, l.cfg.DialTimeout)
		conn, err = l.dialEgress(dctx, host, port)
		cancel()
		code = socks.CodeOf(err)
	}
	if err == nil {
		if _, ok := conn.(streams.HalfCloser); !ok {
			_ = conn.Close()
			err, code = fmt.Errorf("connection to %s cannot half-close", dest), socks.GeneralFailure
		}
	}
	if err != nil {
		cause := socks.Cause(code)
		l.cfg.Limited.Warn("egress "+cause+" "+who+" "+dest, "SOCKS egress: request refused",
			"peer", who, "proto", string(l.cfg.Protocol), "dest", dest, "reply", code, "err", err)
		_ = socks.WriteReply(s, code, netip.AddrPort{})
		_ = s.Close() // the reply, then a clean end: the client reads it
		return nil, &seam.Failure{Peer: who, Cause: cause, Err: err, Destination: dest}
	}
	bound, _ := netip.ParseAddrPort(conn.LocalAddr().String())
	if err := socks.WriteReply(s, socks.Succeeded, bound); err != nil {
		_ = conn.Close()
		_ = s.Reset()
		return nil, &seam.Failure{Peer: who, Cause: "reset", Err: fmt.Errorf("writing the SOCKS reply: %w", err), Destination: dest}
	}
	l.cfg.Limited.Info("egress ok "+who+" "+dest, "SOCKS egress: connected",
		"peer", who, "proto", string(l.cfg.Protocol), "dest", dest, "addr", conn.RemoteAddr().String())
	target := conn.RemoteAddr().String()
	if m, err := manet.FromNetAddr(conn.RemoteAddr()); err == nil {
		target = m.String()
	}
	// Remote = the stream, Local = the destination: bytes from the peer
	// are "in".
	return &seam.Link{
		Remote: s, Local: conn.(streams.HalfCloser),
		Record: registry.Stream{
			OriginAddress: "/p2p/" + who,
			TargetAddress: target,
			Destination:   dest,
			Peer:          who,
			Path:          streams.Path(s.Conn()),
		},
		Attrs: []any{"peer", who, "dest", dest},
	}, nil
}

// dialEgress dials host (a name or an IP) and port if the permit rules
// allow it: the addresses Resolve checked, in order, until one answers.
func (l *Listener) dialEgress(ctx context.Context, host string, port uint16) (net.Conn, error) {
	addrs, err := l.cfg.Egress.Resolve(ctx, l.cfg.Lookup, host, port)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		var c net.Conn
		if c, err = l.cfg.Dial(ctx, "tcp", a.String()); err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}
