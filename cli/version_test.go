package cli

import (
	"runtime/debug"
	"testing"
)

// TestResolveVersion: -ldflags wins; `go install …@v1.2.3` records the
// module version; a build that records none says devVersion.
func TestResolveVersion(t *testing.T) {
	info := func(v string) *debug.BuildInfo { return &debug.BuildInfo{Main: debug.Module{Version: v}} }
	for _, tc := range []struct {
		name, set string
		bi        *debug.BuildInfo
		want      string
	}{
		{"ldflags", "v1.2.3-4-gabc", info("v1.0.0"), "v1.2.3-4-gabc"},
		{"go install", "", info("v1.0.0"), "v1.0.0"},
		{"devel", "", info("(devel)"), devVersion},
		{"no build info", "", nil, devVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolveVersion(tc.set, tc.bi); got != tc.want {
				t.Errorf("resolveVersion(%q, %v) = %q, want %q", tc.set, tc.bi, got, tc.want)
			}
		})
	}
}
