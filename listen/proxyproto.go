package listen

import (
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/pires/go-proxyproto"
)

// PeerIDTLV is the PROXY protocol v2 TLV that carries the calling peer's
// ID in its text form (12D3KooW…, as `p2ptun id` prints it): the first
// type of the range the protocol leaves to applications (0xE0–0xEF).
const PeerIDTLV = proxyproto.PP2_TYPE_MIN_CUSTOM

// ProxyHeader returns the PROXY protocol header, version 1 or 2, that
// tells a target about a stream arriving on the libp2p connection c. The
// command is PROXY, the source c's remote address (the peer's IP and
// port), the destination c's local address; the transport is always
// declared TCP, the stream the target is given, whatever carries it (a
// QUIC connection's addresses are its UDP ones). Version 2 also carries the
// peer's ID in a PeerIDTLV. A connection whose addresses are not IP (a
// relayed one, /p2p-circuit) has no address to tell: version 1 says
// "PROXY UNKNOWN", version 2 the LOCAL command with no addresses (and the
// TLV), so that the target uses the connection's own addresses and never
// takes the relay for the client.
func ProxyHeader(version byte, c network.Conn) ([]byte, error) {
	h := proxyproto.HeaderProxyFromAddrs(version, ipAddr(c.RemoteMultiaddr()), ipAddr(c.LocalMultiaddr()))
	if version == 2 {
		tlv := proxyproto.TLV{Type: PeerIDTLV, Value: []byte(c.RemotePeer().String())}
		if err := h.SetTLVs([]proxyproto.TLV{tlv}); err != nil {
			return nil, err
		}
	}
	return h.Format()
}

// ipAddr is m's IP and port (TCP, or UDP under QUIC) as a *net.TCPAddr,
// or nil when m has none to give: a relayed address (whose IP is the
// relay's), or one of another transport.
func ipAddr(m ma.Multiaddr) net.Addr {
	if _, err := m.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return nil
	}
	ip, err := manet.ToIP(m)
	if err != nil {
		return nil
	}
	port, err := m.ValueForProtocol(ma.P_TCP)
	if err != nil {
		if port, err = m.ValueForProtocol(ma.P_UDP); err != nil {
			return nil
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil
	}
	return &net.TCPAddr{IP: ip, Port: int(n)}
}

// writePreamble writes what the target reads before the stream's first
// byte, if anything: the caller's peer ID and a newline (ReportPeerID, as
// kubo writes it) or a PROXY header (ProxyProtocol). Validate lets a
// listener have only one of them.
func (l *Listener) writePreamble(w io.Writer, c network.Conn) error {
	switch {
	case l.cfg.ReportPeerID:
		if _, err := fmt.Fprintf(w, "%s\n", c.RemotePeer()); err != nil {
			return fmt.Errorf("writing peer ID to target: %w", err)
		}
	case l.cfg.ProxyProtocol != 0:
		h, err := ProxyHeader(l.cfg.ProxyProtocol, c)
		if err != nil {
			return fmt.Errorf("building the PROXY header: %w", err)
		}
		if _, err := w.Write(h); err != nil {
			return fmt.Errorf("writing the PROXY header to target: %w", err)
		}
	}
	return nil
}
