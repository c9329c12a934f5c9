package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/p2ptun/p2ptun/config/tomlpos"
	"github.com/p2ptun/p2ptun/spec"
)

// ListenTunnel is a [[listen]] table: a protocol this node serves by
// dialing a local target, as `p2ptun listen` makes.
type ListenTunnel struct {
	// Name labels the tunnel in `ls`, events and metrics. Optional.
	Name string `toml:"name,omitempty" json:",omitempty"`
	// Protocol is the libp2p protocol, like "/x/web".
	Protocol string `toml:"protocol"`
	// Target is where streams go: a multiaddr or host:port.
	Target string `toml:"target"`
	// Allow lists the peers that may use the tunnel; AllowAll lets any
	// peer. One of them is required.
	Allow    []string `toml:"allow,omitempty" json:",omitempty"`
	AllowAll bool     `toml:"allow_all,omitempty" json:",omitempty"`
	// InviteOnly lets Allow be empty: peers join it by redeeming an
	// invite from `p2ptun share --invite` (until the daemon restarts).
	InviteOnly bool `toml:"invite_only,omitempty" json:",omitempty"`
	// ReportPeerID writes the remote peer ID and a newline to the target
	// before any data.
	ReportPeerID bool `toml:"report_peer_id,omitempty" json:",omitempty"`
	// ProxyProtocol, "v1" or "v2", sends a PROXY protocol header to the
	// target before any data (v2 with the peer ID); default none.
	ProxyProtocol string `toml:"proxy_protocol,omitempty" json:",omitempty"`
	// AllowCustomProtocol permits a protocol outside /x/.
	AllowCustomProtocol bool `toml:"allow_custom_protocol,omitempty" json:",omitempty"`
	// Egress makes it a SOCKS egress (no target): each stream names its
	// destination, dialled only if a Permit rule ("10.0.0.0/8:22",
	// "db.internal:5432") matches it.
	Egress bool     `toml:"egress,omitempty" json:",omitempty"`
	Permit []string `toml:"permit,omitempty" json:",omitempty"`

	// Line is where the table starts in its file (0 if unknown).
	Line int `toml:"-" json:"-"`
	// Spec is the table parsed, set by Validate (and so by Parse).
	Spec spec.Spec `toml:"-" json:"-"`
}

// ForwardTunnel is a [[forward]] table: a local address whose connections
// become streams to a peer's protocol, as `p2ptun forward` makes.
type ForwardTunnel struct {
	Name     string `toml:"name,omitempty" json:",omitempty"`
	Protocol string `toml:"protocol"`
	// Listen is the local address to bind: a multiaddr or host:port.
	Listen string `toml:"listen"`
	// Peer is /p2p/ID, a bare ID, or a full multiaddr ending in /p2p/ID.
	Peer string `toml:"peer,omitempty"`
	// Addrs are more addresses of the peer (as a ticket lists them).
	Addrs []string `toml:"addrs,omitempty" json:",omitempty"`
	// Peers, instead of Peer, make a forward with several peers, in
	// order of preference (each like Peer); Balance picks one for each
	// connection among those that are up: "failover" (default), "rtt" or
	// "round-robin".
	Peers   []string `toml:"peers,omitempty" json:",omitempty"`
	Balance string   `toml:"balance,omitempty" json:",omitempty"`
	// Lazy binds at once and connects on the first client connection;
	// otherwise the tunnel is up only once the peer has been reached
	// (and is retried until it is).
	Lazy bool `toml:"lazy,omitempty" json:",omitempty"`
	// AllowLimited permits relayed connections the relay caps.
	AllowLimited        bool `toml:"allow_limited,omitempty" json:",omitempty"`
	AllowCustomProtocol bool `toml:"allow_custom_protocol,omitempty" json:",omitempty"`
	// Socks makes it a local SOCKS5 server whose requests the peer's
	// egress dials; Gateway lets it bind a non-loopback address.
	Socks   bool `toml:"socks,omitempty" json:",omitempty"`
	Gateway bool `toml:"gateway,omitempty" json:",omitempty"`

	Line int       `toml:"-" json:"-"`
	Spec spec.Spec `toml:"-" json:"-"`
}

// Label names a tunnel in messages: its name if it has one, else what it
// does.
func (t ListenTunnel) Label() string {
	if t.Name != "" {
		return t.Name
	}
	return "listen " + t.Protocol
}

// Label names a tunnel in messages.
func (t ForwardTunnel) Label() string {
	if t.Name != "" {
		return t.Name
	}
	return "forward " + t.Protocol + " " + t.Listen
}

// Request is the tunnel the table asks for, for spec to parse; its name is
// the table's Label.
func (t ListenTunnel) Request() spec.Request {
	return spec.Request{
		Name: t.Label(), Protocol: t.Protocol, Target: t.Target, Allow: t.Allow, AllowAll: t.AllowAll,
		InviteOnly: t.InviteOnly, ReportPeerID: t.ReportPeerID, AllowCustomProtocol: t.AllowCustomProtocol,
		ProxyProtocol: t.ProxyProtocol,
		Egress:        t.Egress, Permit: t.Permit,
	}
}

// Request is the tunnel the table asks for, for spec to parse.
func (t ForwardTunnel) Request() spec.Request {
	return spec.Request{
		Name: t.Label(), Protocol: t.Protocol, ListenAddress: t.Listen, Peer: t.Peer, Addrs: t.Addrs, Lazy: t.Lazy,
		AllowLimited: t.AllowLimited, AllowCustomProtocol: t.AllowCustomProtocol,
		Peers: t.Peers, Balance: t.Balance,
		Socks: t.Socks, Gateway: t.Gateway,
	}
}

// RequestWith is Request with names of peers resolved through a.
func (t ListenTunnel) RequestWith(a spec.Aliases) spec.Request {
	r := t.Request()
	r.Aliases = a
	return r
}

// RequestWith is Request with names of peers resolved through a.
func (t ForwardTunnel) RequestWith(a spec.Aliases) spec.Request {
	r := t.Request()
	r.Aliases = a
	return r
}

// ListenTable is the [[listen]] table that saves r (`listen --save`).
func ListenTable(r spec.Request) ListenTunnel {
	return ListenTunnel{
		Name: r.Name, Protocol: r.Protocol, Target: r.Target, Allow: r.Allow, AllowAll: r.AllowAll,
		InviteOnly: r.InviteOnly, ReportPeerID: r.ReportPeerID, AllowCustomProtocol: r.AllowCustomProtocol,
		ProxyProtocol: r.ProxyProtocol,
		Egress:        r.Egress, Permit: r.Permit,
	}
}

// ForwardTable is the [[forward]] table that saves r (`forward --save`);
// it never holds an invite's secret.
func ForwardTable(r spec.Request) ForwardTunnel {
	return ForwardTunnel{
		Name: r.Name, Protocol: r.Protocol, Listen: r.ListenAddress, Peer: r.Peer, Addrs: r.Addrs, Lazy: r.Lazy,
		AllowLimited: r.AllowLimited, AllowCustomProtocol: r.AllowCustomProtocol,
		Peers: r.Peers, Balance: r.Balance,
		Socks: r.Socks, Gateway: r.Gateway,
	}
}

// fieldError is a validation error about one key or table, located in the
// file once Parse knows the line.
type fieldError struct {
	path string // "listen[2] (web)", "network.listen_addrs"
	line int    // 0 if not known from the value itself
	err  error  // the message, which names the path itself
}

func (e *fieldError) Error() string { return e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// keyErrf is an error about the key at path ("table.key"), so that Parse
// can give its line. Its message is the path, then format with a: the key
// is written once.
func keyErrf(path, format string, a ...any) error {
	return &fieldError{path: path, err: fmt.Errorf("%s"+format, append([]any{path}, a...)...)}
}

func tunnelErr(kind string, i, line int, label, format string, a ...any) error {
	path := fmt.Sprintf("%s[%d] (%s)", kind, i+1, label)
	return &fieldError{path: path, line: line, err: fmt.Errorf("%s: "+format, append([]any{path}, a...)...)}
}

// validateTunnels checks that each table has its required keys and parses
// it with spec, setting its Spec; then that no two tunnels share a name,
// a protocol or a fixed listen address. A table spec rejects is reported
// at its line with spec's reason.
func (c *Config) validateTunnels() error {
	names := map[string]int{}
	name := func(kind string, i, line int, n, label string) error {
		if n == "" {
			return nil
		}
		if prev, ok := names[n]; ok {
			return tunnelErr(kind, i, line, label, "name %q is already used by the tunnel on line %d; names must be unique", n, prev)
		}
		names[n] = line
		return nil
	}
	protos := map[string]int{}
	for i, t := range c.Listen {
		label := t.Label()
		if t.Protocol == "" {
			return tunnelErr("listen", i, t.Line, label, `protocol is required, e.g. protocol = "/x/web"`)
		}
		if t.Target == "" && !t.Egress {
			return tunnelErr("listen", i, t.Line, label, `target is required, e.g. target = "/ip4/127.0.0.1/tcp/8080" (or egress = true and permit = [...] for a SOCKS egress)`)
		}
		if !t.AllowAll && !t.InviteOnly && len(t.Allow) == 0 {
			return tunnelErr("listen", i, t.Line, label, "allow is empty: list the peers that may use it, or set allow_all = true (or invite_only = true)")
		}
		if t.AllowAll && t.InviteOnly {
			return tunnelErr("listen", i, t.Line, label, "allow_all and invite_only contradict each other: keep one")
		}
		sp, err := spec.ParseListen(t.RequestWith(c.Aliases()))
		if err != nil {
			return tunnelErr("listen", i, t.Line, label, "%s", spec.Reason(err))
		}
		c.Listen[i].Spec = sp
		if prev, ok := protos[t.Protocol]; ok {
			return tunnelErr("listen", i, t.Line, label, "protocol %s is already served by the [[listen]] on line %d", t.Protocol, prev)
		}
		protos[t.Protocol] = t.Line
		if err := name("listen", i, t.Line, t.Name, label); err != nil {
			return err
		}
	}
	binds := map[string]int{}
	for i, t := range c.Forward {
		label := t.Label()
		switch {
		case t.Protocol == "":
			return tunnelErr("forward", i, t.Line, label, `protocol is required, e.g. protocol = "/x/web"`)
		case t.Listen == "":
			return tunnelErr("forward", i, t.Line, label, `listen is required, e.g. listen = "/ip4/127.0.0.1/tcp/9000"`)
		case t.Peer == "" && len(t.Peers) == 0:
			return tunnelErr("forward", i, t.Line, label, `peer is required, e.g. peer = "/p2p/12D3KooW..." (or peers = ["/p2p/12D3KooW...", ...] for several)`)
		}
		sp, err := spec.ParseForward(t.RequestWith(c.Aliases()))
		if err != nil {
			return tunnelErr("forward", i, t.Line, label, "%s", spec.Reason(err))
		}
		c.Forward[i].Spec = sp
		if prev, ok := binds[t.Listen]; ok && !strings.HasSuffix(t.Listen, "/tcp/0") && !strings.HasSuffix(t.Listen, "/udp/0") && !strings.HasSuffix(t.Listen, ":0") {
			return tunnelErr("forward", i, t.Line, label, "listen address %s is already bound by the [[forward]] on line %d", t.Listen, prev)
		}
		binds[t.Listen] = t.Line
		if err := name("forward", i, t.Line, t.Name, label); err != nil {
			return err
		}
	}
	return nil
}

// locateTunnels sets the Line of each [[listen]] and [[forward]] table,
// in the order they appear in l.
func (c *Config) locateTunnels(l tomlpos.Layout) {
	for i, line := range l.ArrayLines("listen") {
		if i < len(c.Listen) {
			c.Listen[i].Line = line
		}
	}
	for i, line := range l.ArrayLines("forward") {
		if i < len(c.Forward) {
			c.Forward[i].Line = line
		}
	}
}

// locate prefixes a validation error with name:line when the line of the
// key or table it is about can be found.
func locate(name string, l tomlpos.Layout, err error) string {
	var fe *fieldError
	if errors.As(err, &fe) {
		line := fe.line
		if line == 0 {
			line = l.KeyLine(fe.path)
		}
		if line > 0 {
			return fmt.Sprintf("%s:%d: %s", name, line, err)
		}
	}
	return fmt.Sprintf("%s: %s", name, err)
}
