// Command echo is the runnable example of package p2pnet: one process
// serves an echo protocol, another dials it and sends its stdin.
//
//	go run ./examples/echo -listen -allow-all
//	go run ./examples/echo -dial /ip4/127.0.0.1/tcp/PORT/p2p/12D3KooW… < file
//
// The listener prints its peer ID and addresses, then echoes every
// connection until it is interrupted. The dialer copies stdin to the
// connection, closes its writing side at EOF, and copies the echo to
// stdout. A daemon reaches the listener too:
// `p2ptun forward /x/echo 127.0.0.1:7000 ADDR`, then `nc 127.0.0.1 7000`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/p2ptun/p2ptun/p2pnet"
)

const proto = "/x/echo"

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var (
		listen   = flag.Bool("listen", false, "serve "+proto+" and print this node's addresses")
		dial     = flag.String("dial", "", "dial `PEER-ADDR` (a multiaddr ending in /p2p/ID) and send stdin")
		dir      = flag.String("dir", "", "the node's home `DIR` (its identity key is created there if missing); default a new identity each run")
		allowAll = flag.Bool("allow-all", false, "with -listen: accept every peer")
		allow    list
		addrs    list
	)
	flag.Var(&allow, "allow", "with -listen: accept `PEER` (repeatable)")
	flag.Var(&addrs, "addr", "listen on swarm `MULTIADDR` (repeatable); default every interface, ports the system picks")
	flag.Parse()
	log.SetFlags(0)
	if *listen == (*dial != "") {
		log.Print("echo: pass -listen or -dial PEER-ADDR")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &p2pnet.Server{Dir: *dir, ListenAddrs: addrs, Allow: allow, AllowAll: *allowAll}
	var err error
	if *listen {
		err = serve(ctx, srv)
	} else {
		err = send(ctx, srv, *dial)
	}
	if cerr := srv.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		log.Printf("echo: %v", err)
		os.Exit(1)
	}
}

// serve echoes every connection until ctx ends.
func serve(ctx context.Context, srv *p2pnet.Server) error {
	ln, err := srv.Listen(proto)
	if err != nil {
		return err
	}
	fmt.Printf("serving %s as %s\n", proto, srv.ID())
	for _, a := range srv.Addrs() {
		fmt.Println(a)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			peer, _ := p2pnet.PeerOf(c)
			n, err := io.Copy(c, c)
			log.Printf("echoed %d bytes to %s (err %v)", n, peer, err)
		}()
	}
}

// send copies stdin to a connection to addr and the echo to stdout.
func send(ctx context.Context, srv *p2pnet.Server, addr string) error {
	c, err := srv.Dial(ctx, addr, proto)
	if err != nil {
		return err
	}
	defer c.Close()
	go func() {
		_, _ = io.Copy(c, os.Stdin)
		_ = c.(*p2pnet.Conn).CloseWrite()
	}()
	_, err = io.Copy(os.Stdout, c)
	return err
}
