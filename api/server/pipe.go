package server

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/api/pipe"
	"github.com/p2ptun/p2ptun/node"
)

// pipe serves POST /v0/pipe: it opens a stream as a PipeRequest asks
// and, on success, switches the connection to the pipe protocol (see
// pipe.Accept) and bridges it with the stream until both end. Failures
// before the switch are answered like any other request's.
func (s *Server) pipe(w http.ResponseWriter, r *http.Request) {
	if !headerHasToken(r.Header, "Connection", "upgrade") || !strings.EqualFold(r.Header.Get("Upgrade"), pipe.Upgrade) {
		reply(w, nil, fmt.Errorf("%w: /v0/pipe needs the headers Connection: Upgrade and Upgrade: %s", node.ErrUsage, pipe.Upgrade))
		return
	}
	var req api.PipeRequest
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
	sp, err := req.Spec(s.aliases())
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
	d, err := pipe.Accept(conn)
	if err != nil {
		p.Abort()
		_ = conn.Close()
		s.log.Debug("pipe client went away during the handshake", "peer", req.Peer, "proto", req.Protocol, "err", err)
		return
	}
	// The bridge outlives the request's context; the server's ends it.
	d.Finish(p.Run(s.life, d, s.origin))
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
// listings; New computes it once.
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
