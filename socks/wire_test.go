package socks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"

	socks5 "github.com/armon/go-socks5"
)

func TestRequestRoundTrip(t *testing.T) {
	for _, d := range []socks5.AddrSpec{
		{FQDN: "db.internal", Port: 5432},
		{IP: net.ParseIP("10.1.2.3"), Port: 22},
		{IP: net.ParseIP("fd00::7"), Port: 65535},
	} {
		t.Run(d.String(), func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteRequest(&b, &Request{Command: socks5.ConnectCommand, DestAddr: &d}); err != nil {
				t.Fatal(err)
			}
			b.WriteString("after") // the stream's data follows, untouched
			req, err := ReadRequest(&b)
			if err != nil {
				t.Fatal(err)
			}
			host, port := Address(req)
			if want, _ := Address(&Request{DestAddr: &d}); host != want || int(port) != d.Port || req.Command != socks5.ConnectCommand {
				t.Fatalf("read %d %s:%d, want CONNECT %s", req.Command, host, port, d.String())
			}
			if rest, _ := io.ReadAll(&b); string(rest) != "after" {
				t.Fatalf("the request read %q too many bytes", "after"[:5-len(rest)])
			}
		})
	}
}

func TestReplyRoundTrip(t *testing.T) {
	for _, bound := range []netip.AddrPort{
		{}, netip.MustParseAddrPort("127.0.0.1:4242"), netip.MustParseAddrPort("[::1]:1"),
	} {
		var b bytes.Buffer
		if err := WriteReply(&b, ConnectionRefused, bound); err != nil {
			t.Fatal(err)
		}
		code, got, err := ReadReply(&b)
		if err != nil || code != ConnectionRefused {
			t.Fatalf("ReadReply = %d, %v", code, err)
		}
		if bound.IsValid() && got != bound {
			t.Fatalf("bound %s, want %s", got, bound)
		}
	}
}

// client is a SOCKS5 client's side of the handshake, as curl writes it.
func client(methods ...byte) []byte {
	return append([]byte{5, byte(len(methods))}, methods...)
}

func TestAccept(t *testing.T) {
	t.Run("no auth", func(t *testing.T) {
		in := bytes.NewBuffer(client(2, 0))
		_ = WriteRequest(in, &Request{DestAddr: &socks5.AddrSpec{FQDN: "example.invalid", Port: 80}})
		var out bytes.Buffer
		req, err := Accept(struct {
			io.Reader
			io.Writer
		}{in, &out})
		if err != nil {
			t.Fatal(err)
		}
		if host, port := Address(req); host != "example.invalid" || port != 80 {
			t.Fatalf("request for %s:%d", host, port)
		}
		if !bytes.Equal(out.Bytes(), []byte{5, 0}) {
			t.Fatalf("answered %v, want no authentication", out.Bytes())
		}
	})
	t.Run("auth only", func(t *testing.T) {
		var out bytes.Buffer
		_, err := Accept(struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(client(2)), &out})
		if err == nil || !bytes.Equal(out.Bytes(), []byte{5, 0xff}) {
			t.Fatalf("Accept = %v, answered %v; want an error and no acceptable method", err, out.Bytes())
		}
	})
	t.Run("socks4", func(t *testing.T) {
		var out bytes.Buffer
		if _, err := Accept(struct {
			io.Reader
			io.Writer
		}{bytes.NewReader([]byte{4, 1, 0, 80}), &out}); err == nil || out.Len() != 0 {
			t.Fatalf("Accept = %v, answered %v", err, out.Bytes())
		}
	})
}

func TestCodeOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want byte
	}{
		{nil, Succeeded},
		{fmt.Errorf("x: %w", ErrNotAllowed), NotAllowed},
		{fmt.Errorf("x: %w", ErrNotResolved), HostUnreachable},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, ConnectionRefused},
		{&net.OpError{Op: "dial", Err: syscall.ENETUNREACH}, NetworkUnreachable},
		{&net.OpError{Op: "dial", Err: syscall.EHOSTUNREACH}, HostUnreachable},
		{context.DeadlineExceeded, TTLExpired},
		{errors.New("other"), GeneralFailure},
	} {
		if got := CodeOf(tc.err); got != tc.want {
			t.Errorf("CodeOf(%v) = %d, want %d (%s)", tc.err, got, tc.want, Cause(tc.want))
		}
	}
}

// TestReadKeepsTheReadersError: an error of the reader (a stream reset
// with a refusal's code, an EOF) reaches the caller as it is, for
// errors.Is and errors.As, not flattened into the library's text.
func TestReadKeepsTheReadersError(t *testing.T) {
	sentinel := errors.New("reset with a cause")
	for _, r := range []io.Reader{
		io.MultiReader(bytes.NewReader([]byte{5}), errReader{sentinel}),
		io.MultiReader(bytes.NewReader([]byte{5, 0, 0, 3, 9, 'a'}), errReader{sentinel}),
	} {
		if _, _, err := ReadReply(r); !errors.Is(err, sentinel) {
			t.Fatalf("ReadReply = %v, want the reader's error", err)
		}
	}
	if _, err := ReadRequest(bytes.NewReader(nil)); !errors.Is(err, io.EOF) {
		t.Fatalf("ReadRequest of nothing = %v, want io.EOF", err)
	}
}

// errReader is a reader that fails with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
