package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	ucli "github.com/urfave/cli/v2"
)

// Version is p2ptun's version as set at build time with
// -ldflags "-X github.com/p2ptun/p2ptun/cli.Version=v1.2.3" (make build,
// make release: git describe). Empty otherwise: see version.
var Version string

// devVersion names a build that says nothing of its version.
const devVersion = "v0.1.0-dev"

// version returns p2ptun's version: Version when the build set it, else
// the module version that `go install github.com/p2ptun/p2ptun@v1.2.3`
// records in the binary (a pseudo-version for a build from a git checkout),
// else devVersion.
func version() string {
	bi, _ := debug.ReadBuildInfo()
	return resolveVersion(Version, bi)
}

func resolveVersion(set string, bi *debug.BuildInfo) string {
	switch {
	case set != "":
		return set
	case bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)":
		return bi.Main.Version
	}
	return devVersion
}

// UserAgent is announced to peers through libp2p identify.
func UserAgent() string { return "p2ptun/" + version() }

func libp2pVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/libp2p/go-libp2p" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func versionCommand() *ucli.Command {
	return &ucli.Command{
		Name:   "version",
		Usage:  "print p2ptun's version",
		Flags:  []ucli.Flag{jsonFlag()},
		Action: printVersion,
	}
}

// printVersion prints the version for `p2ptun version` and `p2ptun --version`.
func printVersion(c *ucli.Context) error {
	v := struct{ Version, Libp2p, Go, Platform string }{
		version(), libp2pVersion(), runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH,
	}
	if wantJSON(c) {
		return printJSON(c, v)
	}
	fmt.Fprintf(c.App.Writer, "p2ptun %s (go-libp2p %s, %s %s)\n", v.Version, v.Libp2p, v.Go, v.Platform)
	return nil
}
