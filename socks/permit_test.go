package socks

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string // want: the rule's String, or "" for an error
	}{
		{"cidr", "10.0.0.0/8:22", "10.0.0.0/8:22"},
		{"cidr masked", "10.1.2.3/8:22", "10.0.0.0/8:22"},
		{"ip", "192.0.2.7:80", "192.0.2.7:80"},
		{"ipv6 cidr", "[fd00::/8]:22", "[fd00::/8]:22"},
		{"ipv6 ip", "[::1]:8080", "[::1]:8080"},
		{"mapped v4", "[::ffff:10.0.0.1]:1", "10.0.0.1:1"},
		{"name", "db.internal:5432", "db.internal:5432"},
		{"name case and dot", "DB.Internal.:5432", "db.internal:5432"},
		{"wildcard name", "*.internal:443", "*.internal:443"},
		{"range", "localhost:8000-8099", "localhost:8000-8099"},
		{"any port", "10.0.0.0/8:*", "10.0.0.0/8:*"},
		{"full range is any", "10.0.0.0/8:1-65535", "10.0.0.0/8:*"},
		{"star host", "*:22", ""},
		{"no port", "10.0.0.0/8", ""},
		{"empty port", "db:", ""},
		{"empty host", ":22", ""},
		{"port zero", "db:0", ""},
		{"port too big", "db:65536", ""},
		{"plus port", "db:+22", ""},
		{"backwards range", "db:90-80", ""},
		{"bare ipv6", "::1:22", ""},
		{"bad cidr", "10.0.0.0/33:22", ""},
		{"bad name", "db_internal!:22", ""},
		{"ip with a trailing dot", "0.0.0.0.:1", ""},
		{"wildcard under digits", "*.1.2.3.4:1", "*.1.2.3.4:1"},
		{"empty label", "db..internal:22", ""},
		{"zone", "[fe80::1%eth0]:22", ""},
		{"unclosed bracket", "[::1:22", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRule(tc.in)
			if tc.want == "" {
				if !errors.Is(err, ErrInvalidRule) {
					t.Fatalf("ParseRule(%q) = %v, %v; want ErrInvalidRule", tc.in, r, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRule(%q): %v", tc.in, err)
			}
			if got := r.String(); got != tc.want {
				t.Fatalf("ParseRule(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

// fakeLookup resolves from a table; any other name does not resolve.
type fakeLookup struct {
	names map[string][]string
	asked []string
}

func (f *fakeLookup) lookup(_ context.Context, host string) ([]netip.Addr, error) {
	f.asked = append(f.asked, host)
	ss, ok := f.names[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out, nil
}

func TestResolve(t *testing.T) {
	rules, err := ParseRules([]string{
		"10.0.0.0/8:22", "db.internal:5432", "*.svc.internal:8000-8099", "[fd00::/8]:443", "localhost:*",
	})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string][]string{
		"db.internal":      {"192.0.2.10"}, // a name rule trusts the name
		"ssh.corp":         {"10.1.2.3"},   // permitted by the CIDR
		"evil.example":     {"127.0.0.1"},  // resolves into nothing permitted
		"mixed.example":    {"127.0.0.1", "10.9.9.9"},
		"web.svc.internal": {"192.0.2.20"},
		"localhost":        {"::1", "127.0.0.1"},
		"v6.example":       {"fd00::5"},
		"mapped.example":   {"::ffff:10.0.0.7"},
	}
	for _, tc := range []struct {
		name   string
		host   string
		port   uint16
		want   []string // addresses to dial; nil with wantErr
		err    error
		lookup bool // whether the name was looked up
	}{
		{"ip in cidr", "10.2.3.4", 22, []string{"10.2.3.4:22"}, nil, false},
		{"ip in cidr wrong port", "10.2.3.4", 23, nil, ErrNotAllowed, false},
		{"ip outside", "192.168.1.1", 22, nil, ErrNotAllowed, false},
		{"mapped ip", "::ffff:10.2.3.4", 22, []string{"10.2.3.4:22"}, nil, false},
		{"ipv6 in cidr", "fd00::1", 443, []string{"[fd00::1]:443"}, nil, false},
		{"name rule", "db.internal", 5432, []string{"192.0.2.10:5432"}, nil, true},
		{"name rule any case", "DB.INTERNAL.", 5432, []string{"192.0.2.10:5432"}, nil, true},
		{"name rule wrong port, cidr checked", "db.internal", 22, nil, ErrNotAllowed, true},
		{"wildcard", "web.svc.internal", 8080, []string{"192.0.2.20:8080"}, nil, true},
		{"wildcard is not the domain", "svc.internal", 8080, nil, ErrNotAllowed, false},
		{"name by cidr", "ssh.corp", 22, []string{"10.1.2.3:22"}, nil, true},
		{"name into forbidden ip", "evil.example", 22, nil, ErrNotAllowed, true},
		{"only permitted ips kept", "mixed.example", 22, []string{"10.9.9.9:22"}, nil, true},
		{"mapped resolution", "mapped.example", 22, []string{"10.0.0.7:22"}, nil, true},
		{"no rule for the port: no lookup", "evil.example", 80, nil, ErrNotAllowed, false},
		{"does not resolve", "nothing.invalid", 22, nil, ErrNotResolved, true},
		{"localhost both families", "localhost", 9, []string{"[::1]:9", "127.0.0.1:9"}, nil, true},
		{"v6 name by cidr", "v6.example", 443, []string{"[fd00::5]:443"}, nil, true},
		{"not a name", "a b", 22, nil, ErrNotAllowed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLookup{names: names}
			got, err := rules.Resolve(context.Background(), f.lookup, tc.host, tc.port)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Resolve(%s, %d) = %v, %v; want %v", tc.host, tc.port, got, err, tc.err)
				}
			} else if err != nil {
				t.Fatalf("Resolve(%s, %d): %v", tc.host, tc.port, err)
			}
			var strs []string
			for _, a := range got {
				strs = append(strs, a.String())
			}
			if !slices.Equal(strs, tc.want) {
				t.Fatalf("Resolve(%s, %d) = %v, want %v", tc.host, tc.port, strs, tc.want)
			}
			if looked := len(f.asked) > 0; looked != tc.lookup {
				t.Fatalf("looked up %v, want a lookup: %v", f.asked, tc.lookup)
			}
		})
	}
}

func TestNoRulesPermitNothing(t *testing.T) {
	var rs Rules
	for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
		if _, err := rs.Resolve(context.Background(), nil, host, 80); !errors.Is(err, ErrNotAllowed) {
			t.Fatalf("%s: %v, want ErrNotAllowed", host, err)
		}
	}
}

// FuzzParseRule: a rule that parses prints as a rule that parses to
// itself, and nothing panics.
func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8:22", "[fd00::/8]:443", "db.internal:5432", "*.x:1-2", "localhost:*", "*:22", "[::1]:8080"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		again, err := ParseRule(r.String())
		if err != nil {
			t.Fatalf("%q parsed to %s, which does not parse: %v", s, r, err)
		}
		if again != r {
			t.Fatalf("%q parsed to %+v, whose String parses to %+v", s, r, again)
		}
	})
}
