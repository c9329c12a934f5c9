package p2pnet_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/p2ptun/p2ptun/p2pnet"
)

// Two nodes on loopback, each in its own home: one serves /x/echo, the
// other dials it and sends a line.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "p2pnet-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	loopback := []string{"/ip4/127.0.0.1/tcp/0"}

	client := &p2pnet.Server{Dir: dir + "/client", ListenAddrs: loopback}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	server := &p2pnet.Server{Dir: dir + "/server", ListenAddrs: loopback, Allow: []string{client.ID().String()}}
	ln, err := server.Listen("/x/echo")
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // net.ErrClosed once the server closes
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()

	conn, err := client.Dial(ctx, server.Addrs()[0].String(), "/x/echo")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintln(conn, "hello over libp2p")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(line)
	// Output: hello over libp2p
}
