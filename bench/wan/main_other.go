//go:build !linux

package main

// On other systems bench-wan only says that it needs Linux: its link
// emulator (bench/wan/link) makes network namespaces and TUN devices.

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench-wan: needs Linux (network namespaces and TUN devices); run make bench-wan on a Linux machine, as root")
	os.Exit(1)
}
