package oneline

import (
	"errors"
	"testing"
)

func TestError(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "dial refused", "dial refused"},
		{"libp2p dial list", "failed to dial: all dials failed\n  * [/ip4/127.0.0.1/tcp/1] connection refused\n  * [/ip4/127.0.0.1/udp/1/quic-v1] timeout",
			"failed to dial: all dials failed; [/ip4/127.0.0.1/tcp/1] connection refused; [/ip4/127.0.0.1/udp/1/quic-v1] timeout"},
		{"white space runs", "  bad\tkey\n\nformat ", "bad key format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Error(errors.New(tc.in)); got != tc.want {
				t.Errorf("Error(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
