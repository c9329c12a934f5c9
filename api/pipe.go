package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/refusal"
)

// handshakeWrite bounds writing the 101 response on the socket.
const handshakeWrite = 5 * time.Second

// pipe serves POST /v0/pipe: it opens a stream as a PipeRequest asks
// and, on success, switches the connection to the pipe protocol (see
// pipeconn.go) and bridges it with the stream until both end. Failures
// before the switch are answered like any other request's.
func (s *Server) pipe(w http.ResponseWriter, r *http.Request) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !strings.EqualFold(r.Header.Get("Upgrade"), PipeUpgrade) {
		reply(w, nil, fmt.Errorf("%w: /v0/pipe needs the headers Connection: Upgrade and Upgrade: %s", node.ErrUsage, PipeUpgrade))
		return
	}
	var req PipeRequest
	if !decode(w, r, &req) {
		return
	}
	if !s.enterPipe() {
		reply(w, nil, node.ErrClosed)
		return
	}
	defer s.pipes.Done()
	// Opening ends if the client hangs up or the server closes.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.life, cancel)
	defer stop()
	sp, err := req.toSpec()
	if err != nil {
		reply(w, nil, err)
		return
	}
	p, err := s.node.OpenPipe(ctx, sp)
	if err != nil {
		reply(w, nil, err)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		p.Abort()
		reply(w, nil, fmt.Errorf("switching to the pipe protocol: %w", err))
		return
	}
	if brw.Reader.Buffered() > 0 {
		// The client must wait for the 101 before it sends data.
		p.Abort()
		_ = conn.Close()
		s.log.Warn("pipe client sent data before the 101 response; pipe closed", "peer", req.Peer, "proto", req.Protocol)
		return
	}
	_ = conn.SetDeadline(time.Now().Add(handshakeWrite))
	_, err = conn.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + PipeUpgrade + "\r\n\r\n"))
	if err == nil {
		err = conn.SetDeadline(time.Time{})
	}
	if err != nil {
		p.Abort()
		_ = conn.Close()
		s.log.Debug("pipe client went away during the handshake", "peer", req.Peer, "proto", req.Protocol, "err", err)
		return
	}
	// The bridge outlives the request's context; the server's ends it.
	d := &daemonPipe{frameConn: newFrameConn(conn, nil)}
	d.finish(p.Run(s.life, d, s.origin))
}

// enterPipe counts a pipe request in, unless the server is closing.
func (s *Server) enterPipe() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.pipes.Add(1)
	return true
}

// unixOrigin names the API socket at path as a pipe's origin in stream
// listings; NewServer computes it once.
func unixOrigin(path string) string {
	if p, err := filepath.Abs(path); err == nil {
		return "/unix" + p
	}
	return "/unix/" + path
}

// headerHasToken reports whether the comma-separated header name lists
// token, ignoring case (Connection: keep-alive, Upgrade).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Pipe asks the daemon for one stream to r's peer and protocol and returns
// the connection that carries it. The daemon opens the stream before it
// answers, so an unreachable peer, a missing listener or a refusal comes
// back here as an error that unwraps to the node's sentinel. ctx and
// c.Timeout bound the opening only; close the PipeConn to end the pipe
// early.
func (c *Client) Pipe(ctx context.Context, r PipeRequest) (*PipeConn, error) {
	rctx, _, done := c.begin(ctx)
	defer done()
	p, err := c.pipe(rctx, r)
	if err != nil {
		return nil, c.timedOut(rctx, err)
	}
	return p, nil
}

func (c *Client) pipe(ctx context.Context, r PipeRequest) (*PipeConn, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://p2ptun/v0/pipe", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", PipeUpgrade)

	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, c.callError(err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	br := bufio.NewReader(conn)
	err = c.handshake(conn, br, req)
	if !stop() {
		_ = conn.Close()
		return nil, fmt.Errorf("opening the pipe: %w", ctx.Err())
	}
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &PipeConn{newFrameConn(conn, br)}, nil
}

// Refusal returns the refusal that a pipe's error carries (the peer's
// listener refused the stream: its cause wraps a node sentinel such as
// node.ErrDenied), or nil.
func Refusal(err error) error {
	if r := refusal.Of(err); r != nil {
		return r
	}
	return nil
}

// handshake sends the upgrade request and reads the answer: a 101, or an
// error reply, which it returns as the daemon's error.
func (c *Client) handshake(conn net.Conn, br *bufio.Reader, req *http.Request) error {
	if err := req.Write(conn); err != nil {
		return c.callError(err)
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fmt.Errorf("reading the daemon's answer on %s: %w", c.path, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return replyError(resp)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), PipeUpgrade) {
		return fmt.Errorf("the daemon on %s switched to %q, not %s", c.path, resp.Header.Get("Upgrade"), PipeUpgrade)
	}
	return nil
}
