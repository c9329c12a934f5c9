package socks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"

	socks5 "github.com/armon/go-socks5"
)

// Reply codes (RFC 1928, section 6): the far side's verdict on a request,
// and what the near side tells its SOCKS client.
const (
	Succeeded            byte = 0x00
	GeneralFailure       byte = 0x01
	NotAllowed           byte = 0x02 // connection not allowed by ruleset
	NetworkUnreachable   byte = 0x03
	HostUnreachable      byte = 0x04
	ConnectionRefused    byte = 0x05
	TTLExpired           byte = 0x06
	CommandNotSupported  byte = 0x07
	AddrTypeNotSupported byte = 0x08
)

// CauseHandshake is the cause of a request that could not be read: a
// client (or a peer) that does not speak SOCKS5, or that gave up.
const CauseHandshake = "socks_handshake"

// Cause names a failure reply code: the Reason of events and the cause
// label of p2ptun_stream_errors_total.
func Cause(code byte) string {
	switch code {
	case NotAllowed:
		return "socks_not_allowed"
	case NetworkUnreachable:
		return "socks_network_unreachable"
	case HostUnreachable:
		return "socks_host_unreachable"
	case ConnectionRefused:
		return "socks_refused"
	case TTLExpired:
		return "socks_timeout"
	case CommandNotSupported:
		return "socks_command"
	case AddrTypeNotSupported:
		return "socks_address_type"
	}
	return "socks_failure"
}

// Causes lists what Cause and CauseHandshake return.
func Causes() []string {
	out := []string{CauseHandshake}
	for c := GeneralFailure; c <= AddrTypeNotSupported; c++ {
		out = append(out, Cause(c))
	}
	return out
}

// Meaning says in words what a reply code means, for logs.
func Meaning(code byte) string {
	switch code {
	case Succeeded:
		return "succeeded"
	case NotAllowed:
		return "not allowed by the far side's --permit rules"
	case NetworkUnreachable:
		return "network unreachable from the far side"
	case HostUnreachable:
		return "host unreachable from the far side (or its name did not resolve there)"
	case ConnectionRefused:
		return "connection refused by the destination"
	case TTLExpired:
		return "the far side timed out connecting"
	case CommandNotSupported:
		return "command not supported (only CONNECT is)"
	case AddrTypeNotSupported:
		return "address type not supported"
	}
	return "general failure on the far side"
}

// CodeOf is the reply code for an error of Rules.Resolve or of a dial.
func CodeOf(err error) byte {
	var ne net.Error
	switch {
	case err == nil:
		return Succeeded
	case errors.Is(err, ErrNotAllowed):
		return NotAllowed
	case errors.Is(err, ErrNotResolved), errors.Is(err, syscall.EHOSTUNREACH):
		return HostUnreachable
	case errors.Is(err, syscall.ENETUNREACH):
		return NetworkUnreachable
	case errors.Is(err, syscall.ECONNREFUSED):
		return ConnectionRefused
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return TTLExpired
	}
	return GeneralFailure
}

// Request is a SOCKS5 request: its Command, and its destination (an IP,
// or a name the far side resolves).
type Request = socks5.Request

// Accept is the server's side of a SOCKS5 handshake with a local client:
// the greeting, answered with "no authentication" (or, if the client does
// not offer it, with "no acceptable method" and an error), then the
// request, which it returns without resolving its name. The caller
// answers with WriteReply.
func Accept(rw io.ReadWriter) (*Request, error) {
	var head [2]byte
	if _, err := io.ReadFull(rw, head[:]); err != nil {
		return nil, fmt.Errorf("reading the greeting: %w", err)
	}
	if head[0] != 5 {
		return nil, fmt.Errorf("not a SOCKS5 client (version %d)", head[0])
	}
	methods := make([]byte, head[1])
	if _, err := io.ReadFull(rw, methods); err != nil {
		return nil, fmt.Errorf("reading the greeting: %w", err)
	}
	var none socks5.NoAuthAuthenticator
	offered := false
	for _, m := range methods {
		offered = offered || m == none.GetCode()
	}
	if !offered {
		_, _ = rw.Write([]byte{5, 0xff})
		return nil, errors.New("the client offers no method without authentication")
	}
	if _, err := none.Authenticate(rw, rw); err != nil {
		return nil, err
	}
	return ReadRequest(rw)
}

// ReadRequest reads a SOCKS5 request, no more bytes than it holds. An
// error of r (a stream reset with a cause) is returned as it is.
func ReadRequest(r io.Reader) (*Request, error) {
	cr := &chainReader{r: r}
	req, err := socks5.NewRequest(cr)
	if err != nil && cr.err != nil {
		return nil, cr.err
	}
	return req, err
}

// chainReader keeps the first error its reader returned: the library's
// errors flatten it into text (%v), and callers need to check it with
// errors.Is (a refusal's reset code, io.EOF).
type chainReader struct {
	r   io.Reader
	err error
}

func (c *chainReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// Address is the destination of req as host:port: a name as the client
// gave it, or an IP.
func Address(req *Request) (host string, port uint16) {
	d := req.DestAddr
	if d.FQDN != "" {
		return d.FQDN, uint16(d.Port)
	}
	return d.IP.String(), uint16(d.Port)
}

// WriteRequest writes a CONNECT request for req's destination, a name
// left unresolved for the far side.
func WriteRequest(w io.Writer, req *Request) error {
	b := []byte{5, socks5.ConnectCommand, 0}
	d := req.DestAddr
	switch {
	case d.FQDN != "":
		if len(d.FQDN) > 255 {
			return errors.New("destination name longer than 255 bytes")
		}
		b = append(b, 3, byte(len(d.FQDN)))
		b = append(b, d.FQDN...)
	case d.IP.To4() != nil:
		b = append(append(b, 1), d.IP.To4()...)
	default:
		b = append(append(b, 4), d.IP.To16()...)
	}
	b = append(b, byte(d.Port>>8), byte(d.Port))
	_, err := w.Write(b)
	return err
}

// WriteReply writes a reply with code and the bound address (the zero
// AddrPort for none).
func WriteReply(w io.Writer, code byte, bound netip.AddrPort) error {
	b := []byte{5, code, 0}
	a := bound.Addr().Unmap()
	switch {
	case a.Is6():
		s := a.As16()
		b = append(append(b, 4), s[:]...)
	case a.Is4():
		s := a.As4()
		b = append(append(b, 1), s[:]...)
	default:
		b = append(b, 1, 0, 0, 0, 0)
	}
	b = append(b, byte(bound.Port()>>8), byte(bound.Port()))
	_, err := w.Write(b)
	return err
}

// ReadReply reads a reply: its code and bound address. A reply has a
// request's layout with the code in place of the command, so the
// library's request parser reads it.
func ReadReply(r io.Reader) (code byte, bound netip.AddrPort, err error) {
	rep, err := ReadRequest(r)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	a, _ := netip.AddrFromSlice(rep.DestAddr.IP)
	return rep.Command, netip.AddrPortFrom(a.Unmap(), uint16(rep.DestAddr.Port)), nil
}
