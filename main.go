// Command p2ptun forwards TCP connections over libp2p streams. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/p2ptun/p2ptun/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
