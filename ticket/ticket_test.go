package ticket

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testPeer returns a peer ID derived from name, the same in every run.
func testPeer(t testing.TB, name string) peer.ID {
	t.Helper()
	seed := sha256.Sum256([]byte(name))
	sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func addrs(ss ...string) []ma.Multiaddr {
	out := make([]ma.Multiaddr, len(ss))
	for i, s := range ss {
		out[i] = ma.StringCast(s)
	}
	return out
}

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func sameTicket(a, b Ticket) bool {
	return a.Peer == b.Peer && a.Protocol == b.Protocol && bytes.Equal(a.Secret, b.Secret) &&
		a.Expires.Equal(b.Expires) && slices.Equal(addrStrings(a.Addrs), addrStrings(b.Addrs))
}

// seal turns a raw ticket body into ticket text with a valid checksum, so
// tests can reach the field parser with bodies Encode would never write.
func seal(body []byte) string {
	sum := sha256.Sum256(body)
	return Prefix + encoding.EncodeToString(append(slices.Clip(body), sum[:checksumLen]...))
}

func TestRoundTrip(t *testing.T) {
	server, relay := testPeer(t, "server"), testPeer(t, "relay")
	secret := bytes.Repeat([]byte{0xa5}, 32)
	expires := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, tc := range []struct {
		name string
		in   Ticket
		want []string // the addresses Decode returns
	}{
		{"plain", Ticket{Peer: server, Protocol: "/x/web", Addrs: addrs("/ip4/127.0.0.1/tcp/4141")}, []string{"/ip4/127.0.0.1/tcp/4141"}},
		{"invite", Ticket{Peer: server, Protocol: "/x/ssh", Addrs: addrs("/ip4/198.51.100.7/tcp/4141"), Secret: secret, Expires: expires},
			[]string{"/ip4/198.51.100.7/tcp/4141"}},
		{"every kind of address", Ticket{Peer: server, Protocol: "/x/db", Addrs: addrs(
			"/ip4/203.0.113.7/tcp/4141",
			"/ip6/2001:db8::7/udp/4141/quic-v1",
			"/dns/db.example.org/tcp/443/ws",
			"/ip4/203.0.113.9/tcp/4141/p2p/"+relay.String()+"/p2p-circuit",
		)}, []string{
			"/ip4/203.0.113.7/tcp/4141",
			"/ip6/2001:db8::7/udp/4141/quic-v1",
			"/dns/db.example.org/tcp/443/ws",
			"/ip4/203.0.113.9/tcp/4141/p2p/" + relay.String() + "/p2p-circuit",
		}},
		{"no addresses", Ticket{Peer: server, Protocol: "/x/web"}, nil},
		{"own peer ID dropped from addresses", Ticket{Peer: server, Protocol: "/x/web", Addrs: addrs("/ip4/127.0.0.1/tcp/1/p2p/" + server.String())},
			[]string{"/ip4/127.0.0.1/tcp/1"}},
		{"custom protocol", Ticket{Peer: server, Protocol: "/acme/sync/1.0.0", Addrs: addrs("/ip4/127.0.0.1/tcp/1")}, []string{"/ip4/127.0.0.1/tcp/1"}},
		{"expiry truncated to the second", Ticket{Peer: server, Protocol: "/x/web", Secret: secret, Expires: expires.Add(999 * time.Millisecond)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.in.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(s, Prefix) || strings.Trim(s[len(Prefix):], "abcdefghijklmnopqrstuvwxyz234567") != "" {
				t.Fatalf("ticket %q is not %s followed by lower-case base32", s, Prefix)
			}
			if s != tc.in.String() {
				t.Errorf("String() = %q, want Encode()'s %q", tc.in.String(), s)
			}
			want := tc.in
			want.Addrs = addrs(tc.want...)
			if !want.Expires.IsZero() {
				want.Expires = want.Expires.Truncate(time.Second)
			}
			// As printed, in capitals, and wrapped by a mail program.
			for _, text := range []string{s, strings.ToUpper(s), "  " + s[:20] + "\n  " + s[20:] + "\n"} {
				got, err := Decode(text)
				if err != nil {
					t.Fatalf("Decode(%q): %v", text, err)
				}
				if !sameTicket(got, want) {
					t.Fatalf("Decode(%q) = %+v, want %+v", text, got, want)
				}
			}
			if !IsTicket(s) {
				t.Errorf("IsTicket(%q) = false", s)
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	server, other := testPeer(t, "server"), testPeer(t, "other")
	ok := Ticket{Peer: server, Protocol: "/x/web", Addrs: addrs("/ip4/127.0.0.1/tcp/1")}
	for _, tc := range []struct {
		name string
		edit func(*Ticket)
		want string
	}{
		{"no peer", func(t *Ticket) { t.Peer = "" }, "no peer"},
		{"no protocol", func(t *Ticket) { t.Protocol = "" }, "no protocol"},
		{"protocol without slash", func(t *Ticket) { t.Protocol = "x/web" }, "does not start with /"},
		{"protocol with a space", func(t *Ticket) { t.Protocol = "/x/a b" }, "spaces"},
		{"protocol too long", func(t *Ticket) { t.Protocol = "/" + strings.Repeat("a", MaxProtocolLen) }, "more than"},
		{"short secret", func(t *Ticket) { t.Secret = []byte("short") }, "invite secret is 5 bytes"},
		{"long secret", func(t *Ticket) { t.Secret = make([]byte, MaxSecretLen+1) }, "invite secret is 65 bytes"},
		{"expiry before 1970", func(t *Ticket) { t.Expires = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }, "out of range"},
		{"expiry after 9999", func(t *Ticket) { t.Expires = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "out of range"},
		{"too many addresses", func(t *Ticket) { t.Addrs = addrs(slices.Repeat([]string{"/ip4/127.0.0.1/tcp/1"}, MaxAddrs+1)...) }, "addresses, more than"},
		{"address of another peer", func(t *Ticket) { t.Addrs = addrs("/ip4/127.0.0.1/tcp/1/p2p/" + other.String()) }, "is for peer"},
		{"address that is only a peer ID", func(t *Ticket) { t.Addrs = addrs("/p2p/" + server.String()) }, "no transport"},
		{"empty address", func(t *Ticket) { t.Addrs = []ma.Multiaddr{nil} }, "empty address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := ok
			tc.edit(&tk)
			s, err := tk.Encode()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Encode() = %q, %v; want an error containing %q", s, err, tc.want)
			}
			if got := tk.String(); !strings.HasPrefix(got, "<invalid ticket: ") {
				t.Errorf("String() = %q, want <invalid ticket: …>", got)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	server := testPeer(t, "server")
	good, err := Ticket{Peer: server, Protocol: "/x/web", Addrs: addrs("/ip4/127.0.0.1/tcp/4141")}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// flip changes one character of the body to another base32 one.
	flip := func(s string, i int) string {
		c := byte('a')
		if s[i] == 'a' {
			c = 'b'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	// body builds a raw ticket body from its fields.
	type field = []byte
	uv := func(v uint64) field { return binary.AppendUvarint(nil, v) }
	lp := func(v []byte) field { return append(uv(uint64(len(v))), v...) }
	body := func(fs ...field) []byte { return slices.Concat(fs...) }
	id, proto := lp([]byte(server)), lp([]byte("/x/web"))
	tcp := lp(ma.StringCast("/ip4/127.0.0.1/tcp/1").Bytes())

	for _, tc := range []struct {
		name, in string
		is       error
		want     string
	}{
		{"empty", "", ErrNotTicket, "not a p2ptun ticket"},
		{"a peer address", "/ip4/127.0.0.1/tcp/4141/p2p/" + server.String(), ErrNotTicket, "tickets start with p2ptun1"},
		{"prefix only", "p2ptun", ErrNotTicket, "not a p2ptun ticket"},
		{"later version", "p2ptun2" + good[len(Prefix):], ErrVersion, "unsupported ticket format 2"},
		{"one character changed", flip(good, len(good)/2), ErrDamaged, "checksum mismatch"},
		{"cut short", good[:len(good)/2], ErrDamaged, ""},
		{"last character cut", good[:len(good)-1], ErrDamaged, ""},
		{"not base32", Prefix + "ab0189", ErrDamaged, `'0' (at byte 10) is not part of any ticket`},
		{"not ASCII", Prefix + "ab\u00e9", ErrDamaged, `'é' (at byte 10) is not part of any ticket`},
		{"Kelvin sign for k", Prefix + "ab\u212a", ErrDamaged, "'\u212a' (at byte 10) is not part of any ticket"},
		{"stray bits at the end", Prefix + "ab", ErrDamaged, "cannot end where it does"},
		{"impossible length", Prefix + "abc", ErrDamaged, "cannot end where it does"},
		{"too short for a checksum", Prefix + "aaaa", ErrDamaged, "too short"},
		{"too long", Prefix + strings.Repeat("a", MaxLen), ErrDamaged, "more than 8192"},
		{"empty body", seal(nil), ErrDamaged, "bad peer ID length"},
		{"bad peer ID", seal(body(lp([]byte("not a multihash")), proto, uv(0), uv(0), uv(0))), ErrDamaged, "bad peer ID"},
		{"protocol without slash", seal(body(id, lp([]byte("x")), uv(0), uv(0), uv(0))), ErrDamaged, "does not start with /"},
		{"protocol with a newline", seal(body(id, lp([]byte("/x/a\nb")), uv(0), uv(0), uv(0))), ErrDamaged, "control characters"},
		{"protocol not UTF-8", seal(body(id, lp([]byte("/x/\xff")), uv(0), uv(0), uv(0))), ErrDamaged, "UTF-8"},
		{"too many addresses", seal(body(id, proto, uv(MaxAddrs+1))), ErrDamaged, "65 addresses"},
		{"address count past the end", seal(body(id, proto, uv(2), tcp)), ErrDamaged, "bad address length"},
		{"address cut short", seal(body(id, proto, uv(1), uv(8), []byte{4, 127})), ErrDamaged, "address is cut short"},
		{"bad address", seal(body(id, proto, uv(1), lp([]byte{0xff, 0xff, 0xff}), uv(0), uv(0))), ErrDamaged, "bad address"},
		{"address ending in a peer ID", seal(body(id, proto, uv(1), lp(ma.StringCast("/ip4/127.0.0.1/tcp/1/p2p/"+server.String()).Bytes()), uv(0), uv(0))), ErrDamaged, "ends in a peer ID"},
		{"secret too short", seal(body(id, proto, uv(0), lp([]byte("short")), uv(0))), ErrDamaged, "invite secret is 5 bytes"},
		{"secret too long", seal(body(id, proto, uv(0), lp(make([]byte, MaxSecretLen+1)), uv(0))), ErrDamaged, "secret is 65 bytes long"},
		{"expiry out of range", seal(body(id, proto, uv(0), uv(0), uv(maxExpiry+1))), ErrDamaged, "expiry"},
		{"expiry missing", seal(body(id, proto, uv(0), uv(0))), ErrDamaged, "bad expiry"},
		{"non-minimal varint", seal(body(id, proto, []byte{0x80, 0x00}, uv(0), uv(0))), ErrDamaged, "bad address count"},
		{"bytes after the end", seal(body(id, proto, uv(0), uv(0), uv(0), []byte{0})), ErrDamaged, "1 unexpected bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.in)
			if !errors.Is(err, tc.is) {
				t.Fatalf("Decode(%.40q…) = %+v, %v; want an error wrapping %q", tc.in, got, err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line containing %q", err, tc.want)
			}
		})
	}

	// The well-formed body the cases above break does decode.
	if _, err := Decode(seal(body(id, proto, uv(1), tcp, uv(0), uv(0)))); err != nil {
		t.Fatalf("the cases' base body does not decode: %v", err)
	}
}

func TestIsTicket(t *testing.T) {
	for s, want := range map[string]bool{
		"p2ptun1abc":   true,
		" P2PTUN1abc ": true,
		"p2ptun9":      true,
		"p2ptun":       false,
		"p2ptunx":      false,
		"/x/web":       false,
		"12D3KooW":     false,
		"":             false,
	} {
		if got := IsTicket(s); got != want {
			t.Errorf("IsTicket(%q) = %v, want %v", s, got, want)
		}
	}
}

// checkDecoded holds every ticket Decode accepts to what Encode promises:
// the ticket encodes again, to the same text, and decodes to itself.
// Errors are one line and wrap a sentinel.
func checkDecoded(t *testing.T, s string) {
	got, err := Decode(s)
	if err != nil {
		if !errors.Is(err, ErrNotTicket) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrDamaged) {
			t.Fatalf("Decode error %q wraps no sentinel", err)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("Decode error is not one line: %q", err)
		}
		return
	}
	again, err := got.Encode()
	if err != nil {
		t.Fatalf("decoded ticket %+v does not encode: %v", got, err)
	}
	if norm := asciiLower(strings.Join(strings.Fields(s), "")); again != norm {
		t.Fatalf("re-encoded ticket differs:\n got %s\nwant %s", again, norm)
	}
	back, err := Decode(again)
	if err != nil || !sameTicket(back, got) {
		t.Fatalf("re-encoded ticket decodes to %+v, %v; want %+v", back, err, got)
	}
}

// FuzzDecode feeds Decode arbitrary text.
func FuzzDecode(f *testing.F) {
	f.Add(Ticket{Peer: testPeer(f, "server"), Protocol: "/x/web", Addrs: addrs("/ip4/127.0.0.1/tcp/4141")}.String())
	f.Fuzz(func(t *testing.T, s string) { checkDecoded(t, s) })
}

// FuzzBody feeds Decode arbitrary ticket bodies with a valid checksum,
// which random text would almost never have: it reaches the field parser.
func FuzzBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > MaxLen {
			t.Skip("longer than any ticket")
		}
		checkDecoded(t, seal(body))
	})
}
