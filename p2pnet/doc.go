// Package p2pnet is p2ptun inside a Go program, without a daemon, in the
// spirit of tailscale's tsnet: a Server is a libp2p node with p2ptun's
// access rules, on which Listen serves a protocol as a net.Listener and
// Dial opens a net.Conn to a peer's protocol. The bytes on a connection
// are the stream's, unframed, so a program and a p2ptun daemon reach
// each other: a Dial reaches a daemon's `p2ptun listen`, and a daemon's
// `p2ptun forward` reaches a Listen.
//
// A minimal program:
//
//	srv := &p2pnet.Server{Dir: "/var/lib/myapp/p2p", Allow: []string{"12D3KooW…"}}
//	defer srv.Close()
//	if err := srv.Start(ctx); err != nil { … }
//	fmt.Println(srv.ID(), srv.Addrs())
//	ln, err := srv.Listen("/x/echo") // a net.Listener
//	…
//	conn, err := srv.Dial(ctx, "/ip4/192.0.2.7/tcp/4001/p2p/12D3KooW…", "/x/echo") // a net.Conn
//
// # Access
//
// The rules are the daemon's, built from the same code (packages access,
// listen and peerdial). Listen admits only the peers in Server.Allow (or
// every peer, with AllowAll), each at the per-peer stream rate of
// limits.named_peer_stream_rate (limits.peer_stream_rate for peers let in
// by AllowAll or Listener.Allow); a Listen that would admit nobody fails
// with ErrNoAllowlist. A refused stream is reset with the code that
// `p2ptun listen` sends, so a p2ptun peer reads why. Dir's [access]
// allow and deny lists apply node-wide, before any protocol, as the
// daemon's do. Dial's errors wrap ErrInvalid, ErrUnreachable, ErrDenied
// (the peer's access policy) or ErrNoListener; a listener's refusal
// (its allowlist, its rate) arrives as the stream's reset, so it is the
// error of the Conn's first Read: ErrDenied, ErrRateLimited.
//
// # Home and config
//
// Dir is a p2ptun home: the identity key is created there if missing,
// in `p2ptun init`'s format, beside the default config.toml, so a
// daemon's home works and `p2ptun id --home DIR` prints the same peer
// ID. From config.toml the Server takes [peers] (names wherever a peer
// is written), [access], [limits], [timeouts] and the swarm key; not
// the tunnels, the swarm addresses (ListenAddrs, default
// DefaultListenAddrs) or discovery. While it runs it holds the home's
// daemon lock, so a daemon cannot run with the same identity
// (ErrLocked). Without Dir the node has a new identity for each run.
//
// A library should not reach out unasked: mDNS is off unless
// Server.MDNS, and the DHT, relays, hole punching and port mapping are
// off; peers are found through the addresses given to Dial, Connect or
// Server.Peers.
//
// # Lifetimes
//
// Close closes the listeners (Accept returns net.ErrClosed) and the
// host, which resets every connection, and waits for the Server's
// goroutines. Closing a Listener stops new streams and leaves the
// connections it accepted open, as with net.Listener.
//
// The package imports p2ptun's host and access layers; nothing of ours
// imports it (examples/echo is its runnable example).
package p2pnet
