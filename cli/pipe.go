package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	ucli "github.com/urfave/cli/v2"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/api/pipe"
	"github.com/p2ptun/p2ptun/spec"
	"github.com/p2ptun/p2ptun/ticket"
)

func pipeCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "pipe",
		Usage:     "connect stdin and stdout to one stream to a peer's protocol (ssh ProxyCommand)",
		ArgsUsage: "PEER-ADDR PROTO | TICKET",
		Description: "Asks the running daemon for one PROTO stream to PEER-ADDR (/p2p/ID, a bare ID, or\n" +
			"/ip4/…/tcp/…/p2p/ID), so the peer sees the daemon's identity, then copies stdin to the\n" +
			"stream and the stream to stdout. End of stdin half-closes the stream; the command\n" +
			"exits 0 once both directions have ended cleanly, 1 if the stream was reset, and\n" +
			"with the documented code if the peer refused it (8 not allowed, 5 target down).\n" +
			"A TICKET from `p2ptun share` names the peer, its addresses and the protocol.\n" +
			"  ssh -o ProxyCommand='p2ptun pipe PEER /x/ssh' HOST",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "allow-custom-protocol", Usage: "allow a protocol outside the /x/ namespace"},
			&ucli.BoolFlag{Name: "allow-limited", Usage: "also use a relayed connection that the relay limits in time or data"},
		},
		Action: func(c *ucli.Context) error {
			req, err := pipeArgs(c)
			if err != nil {
				return err
			}
			p, err := client(c).Pipe(c.Context, req)
			if err != nil {
				return err
			}
			if err := pipeStdio(c.Context, p, c.App.Reader, c.App.Writer); err != nil {
				return fmt.Errorf("pipe to %s %s: %w", req.Peer, req.Protocol, err)
			}
			return nil
		},
	}
}

// pipeArgs reads pipe's arguments in either form: PEER-ADDR PROTO, or a
// TICKET (without an invite: redeem one with `forward` first).
func pipeArgs(c *ucli.Context) (api.PipeRequest, error) {
	if c.NArg() == 1 && ticket.IsTicket(c.Args().First()) {
		t, err := ticket.Decode(c.Args().First())
		if err != nil {
			return api.PipeRequest{}, usagef(err)
		}
		if len(t.Secret) > 0 {
			return api.PipeRequest{}, usagef(errors.New("this ticket is an invite: redeem it once with `p2ptun forward TICKET 127.0.0.1:0`, then pipe with `p2ptun share`'s plain ticket or the peer ID"))
		}
		fr := spec.TicketForward(t, "")
		return pipeRequest(c, fr.Peer, fr.Protocol, fr.Addrs)
	}
	a, err := args(c, 2, "PEER-ADDR PROTO (or one TICKET)")
	if err != nil {
		return api.PipeRequest{}, err
	}
	return pipeRequest(c, a[0], a[1], nil)
}

// pipeRequest turns pipe's arguments into the daemon's request, checking
// them first so that bad input fails the same way with no daemon. It is
// the one place that reads PEER-ADDR.
func pipeRequest(c *ucli.Context, peerAddr, proto string, addrs []string) (api.PipeRequest, error) {
	r := api.PipeRequest{
		Peer: peerAddr, Protocol: proto, Addrs: addrs,
		AllowCustomProtocol: c.Bool("allow-custom-protocol"), AllowLimited: c.Bool("allow-limited"),
	}
	if err := r.Check(); err != nil {
		return api.PipeRequest{}, err
	}
	return r, nil
}

// errStreamReset is what pipe reports when the stream did not end cleanly.
var errStreamReset = errors.New("the stream was reset: by the peer (does its listener --allow this daemon's peer ID? does its target accept connections?), by `p2ptun stream close`, or by the daemon stopping")

// pipeStdio copies in to p and p to out until both directions have ended,
// and returns nil only if the stream ended cleanly both ways. It closes p,
// and out, if it can be closed, once the peer has half-closed.
//
// On a clean end it returns after the goroutine reading in has finished.
// On a reset or when ctx ends it returns at once, as ssh needs from its
// ProxyCommand: that goroutine may then be blocked reading in, which no
// portable call interrupts; it returns when in ends (in a process, the
// exit ends it).
func pipeStdio(ctx context.Context, p *pipe.Conn, in io.Reader, out io.Writer) error {
	defer p.Close()
	stop := context.AfterFunc(ctx, func() { _ = p.Close() })
	defer stop()
	sent := make(chan error, 1)
	go func() {
		_, err := io.Copy(p, readerFunc(func(b []byte) (int, error) {
			n, err := in.Read(b)
			if err != nil && err != io.EOF {
				err = &stdioError{"reading stdin", err}
			}
			return n, err
		}))
		if err == nil {
			err = p.CloseWrite()
		}
		sent <- err
		if err != nil {
			// Abort: the daemon resets the stream, and the copy
			// below ends with an error.
			_ = p.Close()
		}
	}()
	_, err := io.Copy(writerFunc(func(b []byte) (int, error) {
		n, err := out.Write(b)
		if err != nil {
			err = &stdioError{"writing stdout", err}
		}
		return n, err
	}), p)
	if err == nil {
		// The peer half-closed: pass the end of file on, for readers
		// such as ssh that wait for it before they end our input.
		if c, ok := out.(io.Closer); ok {
			if cerr := c.Close(); cerr != nil {
				err = &stdioError{"closing stdout", cerr}
			}
		}
	}
	if err == nil {
		err = p.Wait()
	}
	if err == nil {
		// The daemon has read our end of data: the copy is done.
		return <-sent
	}
	var se *stdioError
	select {
	case serr := <-sent:
		if errors.As(serr, &se) {
			return serr // the cause; ours follows from it
		}
	default:
	}
	switch {
	case errors.As(err, &se):
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("interrupted: %w", ctx.Err())
	case errors.Is(err, pipe.ErrReset):
		if r := pipe.Refusal(err); r != nil {
			return r // the peer said why; its sentinel picks the exit code
		}
		return errStreamReset
	}
	return err
}

// stdioError is a failure of pipe's own stdin or stdout, not the stream's.
type stdioError struct {
	op  string
	err error
}

func (e *stdioError) Error() string { return e.op + ": " + e.err.Error() }
func (e *stdioError) Unwrap() error { return e.err }

type (
	readerFunc func([]byte) (int, error)
	writerFunc func([]byte) (int, error)
)

func (f readerFunc) Read(b []byte) (int, error)  { return f(b) }
func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
