package config_test

import (
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/config"
)

func TestMetricsAddr(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"", "", ""},
		{":9464", "127.0.0.1:9464", ""}, // never every interface by accident
		{"127.0.0.1:9464", "127.0.0.1:9464", ""},
		{"0.0.0.0:9464", "0.0.0.0:9464", ""},
		{"[::1]:9464", "[::1]:9464", ""},
		{"localhost:0", "localhost:0", ""},
		{"/ip4/127.0.0.1/tcp/9464", "127.0.0.1:9464", ""},
		{"/ip6/::1/tcp/0", "[::1]:0", ""},
		{"9464", "", "neither host:port nor a multiaddr"},
		{"example.com:9464", "", "not an IP address"},
		{"127.0.0.1:http", "", "invalid port"},
		{"127.0.0.1:70000", "", "invalid port"},
		{"/ip4/127.0.0.1/udp/9464", "", "not an IP and TCP port"},
		{"/dns/localhost/tcp/9464", "", "not an IP and TCP port"},
		{"/ip4/1.2.3/tcp/1", "", "not a valid multiaddr"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := config.MetricsAddr(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("MetricsAddr(%q) = %q, %v; want one-line error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("MetricsAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}
