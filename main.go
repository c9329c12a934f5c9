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
	// SIGHUP asks the daemon to reload (systemctl reload); it must never
	// kill it, so it is caught here and handed on.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	code := cli.Run(cli.WithReload(ctx, hup), os.Args[1:], os.Stdout, os.Stderr)
	signal.Stop(hup)
	stop()
	os.Exit(code)
}
