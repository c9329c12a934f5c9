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

// dialTimeout bounds connecting to the daemon's socket.
const dialTimeout = 5 * time.Second

// DefaultTimeout is the default Client.Timeout: longer than the daemon's
// own bounds on the slowest request, a forward or pipe that dials its peer
// (timeouts.dial, then timeouts.stream_open).
const DefaultTimeout = 30 * time.Second

// ErrNoAnswer is returned when the daemon accepted a request but did not
// answer it within Client.Timeout (a daemon out of file descriptors, or
// stuck).
var ErrNoAnswer = errors.New("the daemon did not answer")

// errTimeout is the cause a request's context is cancelled with when its
// Timeout runs out.
var errTimeout = errors.New("api request timed out")

// Client calls a daemon's control API over its Unix socket.
type Client struct {
	path string
	hc   *http.Client
	// Timeout bounds each request, from connecting to the socket until
	// the whole reply has arrived; for Events and Pipe, until the daemon
	// has answered: the stream that follows has no bound. Zero means no
	// bound. NewClient sets DefaultTimeout.
	Timeout time.Duration
	// AfterFunc starts a request's timer; nil means time.AfterFunc. Tests
	// set it to run out a request's time when they choose.
	AfterFunc func(time.Duration, func()) (stop func() bool)
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
	return &Client{path: path, hc: &http.Client{Transport: tr}, Timeout: DefaultTimeout}
}

// begin starts a request's clock: the returned context is cancelled with
// errTimeout once c.Timeout has passed, unless answered is called first.
// Call done when the request, and whatever it streams, is over.
func (c *Client) begin(ctx context.Context) (rctx context.Context, answered func(), done func()) {
	rctx, cancel := context.WithCancelCause(ctx)
	if c.Timeout <= 0 {
		return rctx, func() {}, func() { cancel(nil) }
	}
	after := c.AfterFunc
	if after == nil {
		after = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	stop := after(c.Timeout, func() { cancel(errTimeout) })
	return rctx, func() { stop() }, func() { stop(); cancel(nil) }
}

// timedOut returns ErrNoAnswer, with the timeout and the socket, if rctx
// (from begin) ran out of time; otherwise err.
func (c *Client) timedOut(rctx context.Context, err error) error {
	if errors.Is(context.Cause(rctx), errTimeout) {
		return fmt.Errorf("%w within %s on %s: it may be out of file descriptors or stuck (see its log); for a slow operation, raise p2ptun --timeout (P2PTUN_TIMEOUT)",
			ErrNoAnswer, c.Timeout, c.path)
	}
	return err
}

// ID returns the daemon's identity.
func (c *Client) ID(ctx context.Context) (Identity, error) {
	return call[Identity](ctx, c, http.MethodGet, "/v0/id", nil)
}

// Listen asks the daemon to register a listener.
func (c *Client) Listen(ctx context.Context, r ListenRequest) (Listener, error) {
	return call[Listener](ctx, c, http.MethodPost, "/v0/listeners/listen", r)
}

// Forward asks the daemon to open a forward.
func (c *Client) Forward(ctx context.Context, r ForwardRequest) (Listener, error) {
	return call[Listener](ctx, c, http.MethodPost, "/v0/listeners/forward", r)
}

// Share asks the daemon for a ticket to one of its listeners.
func (c *Client) Share(ctx context.Context, r ShareRequest) (Share, error) {
	return call[Share](ctx, c, http.MethodPost, "/v0/share", r)
}

// Listeners lists the daemon's listeners and forwards.
func (c *Client) Listeners(ctx context.Context) (ListenerList, error) {
	return call[ListenerList](ctx, c, http.MethodGet, "/v0/listeners", nil)
}

// CloseListeners closes the listeners r selects.
func (c *Client) CloseListeners(ctx context.Context, r CloseRequest) (Closed, error) {
	return call[Closed](ctx, c, http.MethodPost, "/v0/listeners/close", r)
}

// Ping asks the daemon to ping a peer.
func (c *Client) Ping(ctx context.Context, r PingRequest) (PingReply, error) {
	return call[PingReply](ctx, c, http.MethodPost, "/v0/ping", r)
}

// Streams lists the daemon's live streams.
func (c *Client) Streams(ctx context.Context) (StreamList, error) {
	return call[StreamList](ctx, c, http.MethodGet, "/v0/streams", nil)
}

// CloseStreams closes one stream or all of them.
func (c *Client) CloseStreams(ctx context.Context, r StreamCloseRequest) (Closed, error) {
	return call[Closed](ctx, c, http.MethodPost, "/v0/streams/close", r)
}

// call makes a request whose reply is a T.
func call[T any](ctx context.Context, c *Client, method, path string, in any) (T, error) {
	var out T
	return out, c.do(ctx, method, path, in, &out)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	ctx, _, done := c.begin(ctx)
	defer done()
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return c.timedOut(ctx, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return c.timedOut(ctx, fmt.Errorf("decoding daemon reply: %w", err))
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
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("%w: permission denied on the api socket %s: run the command as the daemon's user, as root, or as a member of the group set in its config's [api] group",
			node.ErrDenied, c.path)
	}
	return fmt.Errorf("calling the daemon on %s: %w", c.path, err)
}
