package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/p2ptun/p2ptun/node"
)

// dialTimeout bounds connecting to the daemon's socket; a request itself
// may take as long as the operation it asks for (a forward's peer dial).
const dialTimeout = 5 * time.Second

// Client calls a daemon's control API over its Unix socket.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}
	return &Client{path: path, hc: &http.Client{Transport: tr}}
}

// ID returns the daemon's identity.
func (c *Client) ID(ctx context.Context) (node.Identity, error) {
	var out node.Identity
	return out, c.do(ctx, http.MethodGet, "/v0/id", nil, &out)
}

// Listen asks the daemon to register a listener.
func (c *Client) Listen(ctx context.Context, r node.ListenRequest) (Listener, error) {
	var out Listener
	return out, c.do(ctx, http.MethodPost, "/v0/listeners/listen", r, &out)
}

// Forward asks the daemon to open a forward.
func (c *Client) Forward(ctx context.Context, r node.ForwardRequest) (Listener, error) {
	var out Listener
	return out, c.do(ctx, http.MethodPost, "/v0/listeners/forward", r, &out)
}

// Share asks the daemon for a ticket to one of its listeners.
func (c *Client) Share(ctx context.Context, r node.ShareRequest) (node.Share, error) {
	var out node.Share
	return out, c.do(ctx, http.MethodPost, "/v0/share", r, &out)
}

// Listeners lists the daemon's listeners and forwards.
func (c *Client) Listeners(ctx context.Context) (ListenerList, error) {
	var out ListenerList
	return out, c.do(ctx, http.MethodGet, "/v0/listeners", nil, &out)
}

// CloseListeners closes the listeners r selects.
func (c *Client) CloseListeners(ctx context.Context, r node.CloseRequest) (Closed, error) {
	var out Closed
	return out, c.do(ctx, http.MethodPost, "/v0/listeners/close", r, &out)
}

// Ping asks the daemon to ping a peer.
func (c *Client) Ping(ctx context.Context, r PingRequest) (PingReply, error) {
	var out PingReply
	return out, c.do(ctx, http.MethodPost, "/v0/ping", r, &out)
}

// Streams lists the daemon's live streams.
func (c *Client) Streams(ctx context.Context) (StreamList, error) {
	var out StreamList
	return out, c.do(ctx, http.MethodGet, "/v0/streams", nil, &out)
}

// CloseStreams closes one stream or all of them.
func (c *Client) CloseStreams(ctx context.Context, r StreamCloseRequest) (Closed, error) {
	var out Closed
	return out, c.do(ctx, http.MethodPost, "/v0/streams/close", r, &out)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("decoding daemon reply: %w", err)
	}
	return nil
}

// send makes a request and returns the response if its status is 200 OK;
// otherwise it returns the daemon's error, mapped to its sentinel.
func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://p2ptun"+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.callError(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, replyError(resp)
	}
	return resp, nil
}

// callError describes a failure to reach the daemon.
func (c *Client) callError(err error) error {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w (api socket %s): start one with `p2ptun daemon`", ErrDaemonNotRunning, c.path)
	}
	return fmt.Errorf("calling the daemon on %s: %w", c.path, err)
}

// replyError decodes the error body of a failed request.
func replyError(resp *http.Response) error {
	var eb errorBody
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&eb); err != nil || eb.Error == "" {
		return fmt.Errorf("daemon answered %s", resp.Status)
	}
	return &Error{Code: eb.Code, Message: eb.Error}
}
