package p2pnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/access"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/p2phost"
	"github.com/p2ptun/p2ptun/peerdial"
	"github.com/p2ptun/p2ptun/peerlog"
	"github.com/p2ptun/p2ptun/refusal"
	"github.com/p2ptun/p2ptun/spec"
)

// Errors returned by a Server, its listeners and its connections, to be
// checked with errors.Is. They are the same values as the daemon's, so a
// program and the p2ptun CLI agree on what went wrong.
var (
	// ErrInvalid is bad input: a peer ID, multiaddr, protocol or name
	// that cannot be parsed, or a Listen that allows no peer.
	ErrInvalid = spec.ErrInvalid
	// ErrNoAllowlist is a Listen on a Server that allows no peer
	// (neither Allow nor AllowAll). It is ErrInvalid too.
	ErrNoAllowlist = fmt.Errorf("%w: the listener would allow no peer: set Server.Allow (peer IDs or [peers] names) or Server.AllowAll", spec.ErrInvalid)
	// ErrUnreachable: no connection to the peer could be made.
	ErrUnreachable = peerdial.ErrUnreachable
	// ErrNoListener: the peer serves no listener for the protocol.
	ErrNoListener = peerdial.ErrNoListener
	// ErrDenied: the peer refuses this node, by its access policy
	// (returned by Dial or Connect) or its listener's allowlist (returned
	// by the connection's first Read).
	ErrDenied = refusal.ErrDenied
	// ErrRateLimited: this node opens streams faster than the peer's
	// listener allows (returned by the connection's first Read).
	ErrRateLimited = refusal.ErrRateLimited
	// ErrLocked: a p2ptun daemon (or another Server) runs with Dir.
	ErrLocked = homedir.ErrLocked
	// ErrListening: the Server already has a listener for the protocol.
	ErrListening = errors.New("already listening on the protocol")
)

// DefaultListenAddrs are the swarm addresses of a Server whose
// ListenAddrs is empty: TCP and QUIC on every IPv4 interface, on ports the
// system picks (TCP alone when Dir's config names a swarm key).
var DefaultListenAddrs = []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"}

// Server is a p2ptun node inside a program: a libp2p host with the
// daemon's access rules, on which Listen serves a protocol as a
// net.Listener and Dial opens a net.Conn to a peer's protocol. Set its
// fields, then Start it (Listen, Dial and Connect start it if needed);
// Close stops it. The fields must not change after Start.
type Server struct {
	// Dir is the node's home: its identity key (created, with the
	// default config.toml, if missing, as `p2ptun init` does; a
	// daemon's home works) and config.toml, whose [peers] names, [access]
	// lists, [limits], [timeouts] and swarm key the Server uses. The
	// Server holds the home's daemon lock while it runs, so a daemon
	// cannot run on the same identity meanwhile (ErrLocked). Empty: a new
	// identity for this run only, and the config's defaults. Not on
	// Windows, whose file modes cannot guard the key (ErrInvalid).
	Dir string
	// ListenAddrs are the swarm's listen addresses (multiaddrs); default
	// DefaultListenAddrs. Dir's network.listen_addrs is not used, so a
	// program does not take the daemon's port.
	ListenAddrs []string
	// Allow lists the peers that Listen's listeners accept: peer IDs, or
	// names from Dir's [peers]. They get the daemon's rate for the peers a
	// listener names (limits.named_peer_stream_rate).
	Allow []string
	// AllowAll makes Listen's listeners accept every peer that reaches
	// the node, at limits.peer_stream_rate each.
	AllowAll bool
	// Peers are peers' addresses to remember, each a multiaddr ending in
	// /p2p/ID (or a [peers] name): the addresses Dial and Connect use for
	// those peers.
	Peers []string
	// MDNS announces the node on the LAN and learns LAN peers' addresses.
	// Default off: a library does not announce itself unless asked.
	MDNS bool
	// Logger receives the node's log lines; default none.
	Logger *slog.Logger

	mu        sync.Mutex
	state     state
	cfg       config.Config
	names     spec.Aliases
	host      *p2phost.Host
	lock      *homedir.Lock
	allow     []peer.ID
	limited   *peerlog.Logger
	listeners map[protocol.ID]*Listener
}

type state int

const (
	idle state = iota
	running
	closed
)

// Start creates the identity if needed, takes the home's lock, and starts
// the host. It does nothing on a running Server; after Close it returns
// net.ErrClosed. On error nothing is left running or locked.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case running:
		return nil
	case closed:
		return net.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.start(); err != nil {
		if s.host != nil {
			_ = s.host.Close()
			s.host = nil
		}
		if s.lock != nil {
			_ = s.lock.Close()
			s.lock = nil
		}
		return fmt.Errorf("p2pnet: %w", err)
	}
	s.state = running
	return nil
}

func (s *Server) start() error {
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sk, psk, err := s.home()
	if err != nil {
		return err
	}
	if s.names, err = spec.ParseAliases(s.cfg.Peers); err != nil {
		return err
	}
	if s.allow, err = s.peerIDs(s.Allow); err != nil {
		return err
	}
	allow, err := s.peerIDs(s.cfg.Access.Allow)
	if err != nil {
		return err
	}
	deny, err := s.peerIDs(s.cfg.Access.Deny)
	if err != nil {
		return err
	}
	var peers []peer.AddrInfo
	for _, p := range s.Peers {
		pi, err := s.names.PeerAddr(p)
		if err != nil {
			return err
		}
		peers = append(peers, pi)
	}
	addrs, err := listenAddrs(s.ListenAddrs, psk != nil)
	if err != nil {
		return err
	}
	s.limited = peerlog.New(log, s.cfg.Limits.LogInterval.Std(), nil)
	h, err := p2phost.New(p2phost.Config{
		Key: sk, ListenAddrs: addrs, Timeouts: s.cfg.Timeouts, Limits: s.cfg.Limits,
		Gater: access.New(allow, deny), SwarmKey: psk, DHT: "off", MDNS: s.MDNS,
		UserAgent: "p2ptun/p2pnet", Logger: log, Limited: s.limited,
	})
	if err != nil {
		return err
	}
	if err := h.Start(context.Background()); err != nil {
		return err
	}
	s.host = h
	for _, pi := range peers {
		h.Host().Peerstore().AddAddrs(pi.ID, pi.Addrs, peerstore.PermanentAddrTTL)
	}
	s.listeners = make(map[protocol.ID]*Listener)
	return nil
}

// home reads (or, without Dir, makes up) the identity, the config and the
// swarm key, taking Dir's lock.
func (s *Server) home() (crypto.PrivKey, pnet.PSK, error) {
	if s.Dir == "" {
		s.cfg = config.Default()
		sk, err := homedir.GenerateKey()
		return sk, nil, err
	}
	if runtime.GOOS == "windows" { // as daemon.Supported: fail closed
		return nil, nil, fmt.Errorf("%w: Server.Dir is not supported on windows: its identity key is guarded by Unix file modes; leave Dir empty for a new identity each run", spec.ErrInvalid)
	}
	if !homedir.IsInitialized(s.Dir) {
		if _, err := homedir.Init(s.Dir); err != nil {
			return nil, nil, err
		}
	}
	if err := homedir.Check(s.Dir, -1); err != nil {
		return nil, nil, err
	}
	lock, err := homedir.LockDaemon(s.Dir)
	if err != nil {
		return nil, nil, err
	}
	s.lock = lock
	if s.cfg, err = config.Load(filepath.Join(s.Dir, config.ConfigFile)); err != nil {
		return nil, nil, err
	}
	sk, err := homedir.LoadKey(s.cfg.KeyPath(s.Dir))
	if err != nil {
		return nil, nil, err
	}
	var psk pnet.PSK
	if path := s.cfg.SwarmKeyPath(s.Dir); path != "" {
		if psk, err = homedir.LoadSwarmKey(path); err != nil {
			return nil, nil, err
		}
	}
	return sk, psk, nil
}

// peerIDs resolves peer IDs and [peers] names.
func (s *Server) peerIDs(in []string) ([]peer.ID, error) {
	out := make([]peer.ID, 0, len(in))
	for _, p := range in {
		id, err := s.names.Peer(p)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// listenAddrs parses the swarm addresses, or returns the defaults.
func listenAddrs(in []string, private bool) ([]ma.Multiaddr, error) {
	if len(in) == 0 {
		in = DefaultListenAddrs
		if private {
			in = in[:1]
		}
	}
	out := make([]ma.Multiaddr, 0, len(in))
	for _, a := range in {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("%w: listen address %q is not a multiaddr (%v); use e.g. /ip4/0.0.0.0/tcp/0", spec.ErrInvalid, a, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// started starts the Server if needed and returns its libp2p host.
func (s *Server) started(ctx context.Context) (host.Host, error) {
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s.host.Host(), nil
}

// ID returns the node's peer ID; empty before Start.
func (s *Server) ID() peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.host == nil {
		return ""
	}
	return s.host.Host().ID()
}

// Addrs returns the node's addresses, each ending in /p2p/ID, as a peer
// passes them to Dial or to `p2ptun forward`; nil before Start.
func (s *Server) Addrs() []ma.Multiaddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.host == nil {
		return nil
	}
	h := s.host.Host()
	out, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	return out
}

// Close closes every listener (their Accept returns net.ErrClosed), then
// the host, which resets every connection's stream, and releases Dir's
// lock. It waits for the Server's goroutines. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.state == closed {
		s.mu.Unlock()
		return nil
	}
	s.state = closed
	ls := make([]*Listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		ls = append(ls, l)
	}
	s.mu.Unlock()
	var err error
	for _, l := range ls {
		err = errors.Join(err, l.Close())
	}
	if s.host != nil {
		err = errors.Join(err, s.host.Close())
	}
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close())
	}
	return err
}
