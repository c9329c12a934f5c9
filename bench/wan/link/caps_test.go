//go:build linux

package link

import (
	"strings"
	"testing"
)

// Root without CAP_SYS_ADMIN (an unprivileged container) cannot make
// namespaces: Available says so, and the tests skip rather than fail.
func TestMissingCaps(t *testing.T) {
	for _, tc := range []struct {
		name, capEff, want string
	}{
		{"full root", "000001ffffffffff", ""},
		{"this machine's root", "000001fffeffffff", ""},
		{"docker's default root", "00000000a80425fb", "needs CAP_SYS_ADMIN and CAP_NET_ADMIN"},
		{"net admin only", "0000000000001000", "needs CAP_SYS_ADMIN:"},
		{"sys admin only", "0000000000200000", "needs CAP_NET_ADMIN:"},
		{"garbled", "zz", "reading CapEff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status := "Name:\ttest\nCapInh:\t0000000000000000\nCapEff:\t" + tc.capEff + "\nCapBnd:\t000001ffffffffff\n"
			err := missingCaps(status)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CapEff %s: %v, want nil", tc.capEff, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CapEff %s: %v, want %q", tc.capEff, err, tc.want)
			}
		})
	}
	if err := missingCaps("Name:\ttest\n"); err != nil {
		t.Fatalf("no CapEff line: %v, want nil (ip says what it lacks)", err)
	}
}
