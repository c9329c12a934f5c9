package p2pnet

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/testnet"
)

// A Dial reaches a daemon's `p2ptun listen`, bytes both ways and the
// half-close; a daemon's listener that does not allow the Server refuses
// it with the code a p2ptun client reads: ErrDenied.
func TestDialDaemonListen(t *testing.T) {
	client := start(t, &Server{})
	d := harness.Start(t, harness.Spec{})
	target := testnet.Serve(t, testnet.Echo)
	if _, errOut, code := d.CLI(t, "listen", "/x/echo", target, "--allow", client.ID().String()); code != 0 {
		t.Fatalf("listen: exit %d: %s", code, errOut)
	}
	if _, errOut, code := d.CLI(t, "listen", "/x/private", target, "--allow", harness.NewPeerID(t)); code != 0 {
		t.Fatalf("listen: exit %d: %s", code, errOut)
	}

	c, err := client.Dial(context.Background(), d.Addresses[0], "/x/echo")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if got, _ := PeerOf(c); got.String() != d.ID {
		t.Errorf("PeerOf = %s; want the daemon %s", got, d.ID)
	}
	harness.Echoes(t, c, "to the daemon's target\n")
	if _, err := io.WriteString(c, "and back\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.(*Conn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(c); err != nil || string(got) != "and back\n" {
		t.Errorf("after CloseWrite read %q, %v; want the echo, then EOF", got, err)
	}

	events := d.Events(t)
	if err := dialRefused(client, d.Addresses[0], "/x/private"); !errors.Is(err, ErrDenied) {
		t.Errorf("Dial, then the first Read, on a daemon listener that does not allow the Server = %v; want ErrDenied", err)
	}
	harness.NextEvent(t, events, 30*time.Second, "the daemon refusing the Server", func(ev harness.Event) bool {
		return ev.Type == "stream_failed" && ev.Reason == "denied" && ev.Peer == client.ID().String()
	})
	if _, err := client.Dial(context.Background(), d.Addresses[0], "/x/none"); !errors.Is(err, ErrNoListener) {
		t.Errorf("Dial of a protocol the daemon does not serve = %v; want ErrNoListener", err)
	}
}

// A daemon's `p2ptun forward` reaches a Listen; a Listen that does not
// allow the daemon refuses its stream with the code the daemon reads as
// "denied", and its client's connection is reset.
func TestDaemonForwardToListen(t *testing.T) {
	d := harness.Start(t, harness.Spec{})
	server := start(t, &Server{Allow: []string{d.ID}})
	_, accepted := listenEcho(t, server)
	out, errOut, code := d.CLI(t, "forward", "/x/echo", "127.0.0.1:0", addr(t, server))
	if code != 0 {
		t.Fatalf("forward: exit %d: %s", code, errOut)
	}
	c, err := net.Dial("tcp", harness.HostPort(t, out))
	if err != nil {
		t.Fatal(err)
	}
	harness.Echoes(t, c, "from the daemon's client\n")
	if got, _ := PeerOf(<-accepted); got.String() != d.ID {
		t.Errorf("the accepted Conn's peer = %s; want the daemon %s", got, d.ID)
	}
	_ = c.Close()

	stranger := start(t, &Server{Allow: []string{harness.NewPeerID(t)}})
	_, strangerAccepted := listenEcho(t, stranger)
	out, errOut, code = d.CLI(t, "forward", "/x/echo", "127.0.0.1:0", addr(t, stranger))
	if code != 0 {
		t.Fatalf("forward: exit %d: %s", code, errOut)
	}
	events := d.Events(t)
	// The forward resets the client once the peer refuses it; on a busy
	// machine that can come before the client's connect has returned.
	c2, err := net.Dial("tcp", harness.HostPort(t, out))
	if err == nil {
		defer c2.Close()
		if _, err = c2.Write([]byte("let me in")); err == nil {
			_, err = c2.Read(make([]byte, 1))
		}
	}
	if !harness.IsReset(err) {
		t.Errorf("the refused client = %v; want a reset", err)
	}
	harness.NextEvent(t, events, 30*time.Second, "the daemon reading the refusal", func(ev harness.Event) bool {
		return (ev.Type == "stream_close" || ev.Type == "stream_failed") && ev.Reason == "denied"
	})
	select {
	case <-strangerAccepted:
		t.Error("a refused stream was accepted")
	default:
	}
}

// A daemon's home works for a Server and a Server's for a daemon: one
// identity, and one of them at a time (the daemon exits with
// ExitConflict, 6, while a Server holds the home).
func TestDaemonHome(t *testing.T) {
	home, id := harness.InitHome(t, nil)
	s := start(t, &Server{Dir: home})
	if s.ID().String() != id {
		t.Errorf("Server on a `p2ptun init` home has ID %s; want %s", s.ID(), id)
	}
	if _, errOut, code := harness.Run(t, "--home", home, "daemon", "--listen-addr", "/ip4/127.0.0.1/tcp/0"); code != 6 {
		t.Errorf("daemon on a home a Server holds: exit %d (%s); want 6", code, errOut)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	own := harness.TempHome(t)
	s = start(t, &Server{Dir: own})
	made := s.ID().String()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := harness.Start(t, harness.Spec{Home: own}); d.ID != made {
		t.Errorf("daemon on a Server's home has ID %s; want %s", d.ID, made)
	}
}
