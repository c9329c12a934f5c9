package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/p2ptun/p2ptun/api/pipe"
)

// Pipe asks the daemon for one stream to r's peer and protocol and returns
// the connection that carries it. The daemon opens the stream before it
// answers, so an unreachable peer, a missing listener or a refusal comes
// back here as an error that unwraps to the node's sentinel. ctx and
// c.Timeout bound the opening only; close the pipe.Conn to end the pipe
// early.
func (c *Client) Pipe(ctx context.Context, r PipeRequest) (*pipe.Conn, error) {
	rctx, _, done := c.begin(ctx)
	defer done()
	p, err := c.pipe(rctx, r)
	if err != nil {
		return nil, c.timedOut(rctx, err)
	}
	return p, nil
}

func (c *Client) pipe(ctx context.Context, r PipeRequest) (*pipe.Conn, error) {
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
	req.Header.Set("Upgrade", pipe.Upgrade)

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
	return pipe.Open(conn, br), nil
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
	if !strings.EqualFold(resp.Header.Get("Upgrade"), pipe.Upgrade) {
		return fmt.Errorf("the daemon on %s switched to %q, not %s", c.path, resp.Header.Get("Upgrade"), pipe.Upgrade)
	}
	return nil
}
