package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/config"
)

func TestAccessAndLimitsValidation(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"bad allow", "[access]\nallow = [\"nope\"]\n", "access.allow"},
		{"bad deny", "[access]\ndeny = [\"nope\"]\n", "access.deny"},
		{"negative limit", "[limits]\npeer_streams = -1\n", "limits.peer_streams"},
		{"negative rate", "[limits]\npeer_stream_rate = -1.0\n", "limits.peer_stream_rate"},
		{"negative named rate", "[limits]\nnamed_peer_stream_rate = -1.0\n", "limits.named_peer_stream_rate"},
		{"tiny named rate", "[limits]\nnamed_peer_stream_rate = 0.001\n", "limits.named_peer_stream_rate = 0.001 is too small"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("c.toml", []byte(tc.in))
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalid naming %s", err, tc.want)
			}
		})
	}
	c, err := config.Parse("c.toml", []byte("[limits]\npeer_streams = 7\n"))
	if err != nil || c.Limits.PeerStreams != 7 || c.Limits.ListenerPeerStreams != config.Default().Limits.ListenerPeerStreams {
		t.Fatalf("partial limits: %+v, %v", c.Limits, err)
	}
}

// Values that would break the daemon (a zero ticker panics, a tiny one
// burns a core, NaN turns a limit off, a huge MiB count overflows) are
// rejected by Validate, with the key and its line; `config check` and the
// daemon both run it.
func TestValidationMinimums(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"keepalive 1ns", "[timeouts]\nkeepalive = \"1ns\"\n", `c.toml:2: timeouts.keepalive = "1ns" is too short: use at least "1s"`},
		{"keepalive 2ns", "[timeouts]\n\nkeepalive = \"2ns\"\n", `c.toml:3: timeouts.keepalive = "2ns" is too short`},
		{"keepalive just under", "[timeouts]\nkeepalive = \"999ms\"\n", "c.toml:2: timeouts.keepalive"},
		{"dial", "[timeouts]\ndial = \"1ns\"\n", `c.toml:2: timeouts.dial = "1ns" is too short: use at least "100ms"`},
		{"stream_open", "[timeouts]\nstream_open = \"1us\"\n", "c.toml:2: timeouts.stream_open"},
		{"target_dial", "[timeouts]\ntarget_dial = \"99ms\"\n", "c.toml:2: timeouts.target_dial"},
		{"rate nan", "[limits]\npeer_stream_rate = nan\n", "c.toml:2: limits.peer_stream_rate = NaN is not a number"},
		{"rate inf", "[limits]\npeer_stream_rate = inf\n", "c.toml:2: limits.peer_stream_rate = +Inf is not a number"},
		{"rate -inf", "[limits]\npeer_stream_rate = -inf\n", "c.toml:2: limits.peer_stream_rate = -Inf is not a number"},
		{"rate negative", "[limits]\npeer_stream_rate = -0.5\n", "c.toml:2: limits.peer_stream_rate must not be negative"},
		{"rate too small", "[limits]\npeer_stream_rate = 0.001\n", "c.toml:2: limits.peer_stream_rate = 0.001 is too small: use at least 0.01"},
		{"log_interval", "[limits]\nlog_interval = \"1ms\"\n", "c.toml:2: limits.log_interval"},
		{"memory overflow", "[limits]\nmemory_mib = 9223372036854775807\n", "c.toml:2: limits.memory_mib = 9223372036854775807 is too large"},
		{"peer memory overflow", "[limits]\npeer_memory_mib = 8796093022208\n", "c.toml:2: limits.peer_memory_mib"},
		{"relay data overflow", "[relay]\ndata_mib = 8796093022208\n", "c.toml:2: relay.data_mib"},
		{"relay negative", "[relay]\nmax_circuits = -1\n", "c.toml:2: relay.max_circuits must not be negative"},
		{"relay duration", "[relay]\nduration = \"1ns\"\n", "c.toml:2: relay.duration"},
		{"relay ttl", "[relay]\nreservation_ttl = \"1s\"\n", "c.toml:2: relay.reservation_ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("c.toml", []byte(tc.in))
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
	// The minimums themselves, and 0 (the default), are fine.
	ok := "[timeouts]\nkeepalive = \"1s\"\ndial = \"100ms\"\ndrain = \"1ns\"\nshutdown = \"0s\"\n" +
		"[limits]\npeer_stream_rate = 0.01\nlog_interval = \"1s\"\nmemory_mib = 1073741824\n" +
		"[relay]\nduration = \"1s\"\nreservation_ttl = \"1m\"\ndata_mib = 0\n"
	if _, err := config.Parse("c.toml", []byte(ok)); err != nil {
		t.Fatal(err)
	}
}
