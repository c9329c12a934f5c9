//go:build !linux

// Command bench-wan needs Linux: its link emulator (bench/wan/link) makes
// network namespaces and TUN devices.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench-wan: needs Linux (network namespaces and TUN devices); run make bench-wan on a Linux machine, as root")
	os.Exit(1)
}
