package ticket

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/oneline"
)

// Prefix starts every ticket of the format this package writes: "p2ptun"
// and the format's version. The body after it is lower-case base32, which
// has no '1', so the prefix stands out, and which a terminal selects with
// one double-click.
const Prefix = "p2ptun1"

// brand is the part of the prefix that every version shares.
const brand = "p2ptun"

// Bounds on what Decode accepts, so a hostile ticket cannot make it
// allocate much. Real tickets are far smaller.
const (
	// MaxLen bounds a ticket's length in bytes, whitespace excluded.
	MaxLen = 8192
	// MaxAddrs bounds the addresses one ticket carries.
	MaxAddrs = 64
	// MaxProtocolLen bounds the protocol name.
	MaxProtocolLen = 256
	// MinSecretLen and MaxSecretLen bound an invite's secret.
	MinSecretLen = 16
	MaxSecretLen = 64
)

// maxAddrLen bounds one binary multiaddr.
const maxAddrLen = 1024

// maxExpiry is the last second of the year 9999.
const maxExpiry = 253402300799

// checksumLen is how many bytes of SHA-256 end the encoded body.
const checksumLen = 4

// Errors returned by Decode, to be checked with errors.Is. Every error
// Decode returns wraps one of them.
var (
	// ErrNotTicket means the text does not start with a ticket prefix.
	ErrNotTicket = errors.New("not a p2ptun ticket (tickets start with " + Prefix + ")")
	// ErrVersion means the ticket is of a later format than this package
	// reads.
	ErrVersion = errors.New("unsupported ticket format")
	// ErrDamaged means the ticket is cut short, mistyped or malformed.
	ErrDamaged = errors.New("damaged ticket")
)

// Ticket is what a ticket says. The zero Secret and Expires mean a plain
// ticket: addressing only, no invite.
type Ticket struct {
	// Peer is the peer that serves Protocol.
	Peer peer.ID
	// Addrs are the addresses Peer can be dialed on, without /p2p/Peer;
	// they may be relay (/p2p-circuit) addresses.
	Addrs []ma.Multiaddr
	// Protocol is the libp2p protocol of the shared listener (/x/web).
	Protocol string
	// Secret is an invite's secret, MinSecretLen to MaxSecretLen bytes;
	// empty for a plain ticket.
	Secret []byte
	// Expires is when the invite expires, to the second; zero for none.
	Expires time.Time
}

// alphabet is RFC 4648's base32 alphabet in lower case.
const alphabet = "abcdefghijklmnopqrstuvwxyz234567"

// encoding is base32 in alphabet, without padding.
var encoding = base32.NewEncoding(alphabet).WithPadding(base32.NoPadding)

// Encode returns t as one line of text. It fails if t could not be decoded
// again: no peer, a malformed protocol, too many or too long addresses, an
// address for another peer, a secret of the wrong size, or an expiry
// before 1970 or after 9999. An address that ends in /p2p/ of t.Peer is
// written without it.
func (t Ticket) Encode() (string, error) {
	if t.Peer == "" {
		return "", errors.New("ticket: no peer")
	}
	if err := checkProtocol(t.Protocol); err != nil {
		return "", fmt.Errorf("ticket: %w", err)
	}
	if len(t.Addrs) > MaxAddrs {
		return "", fmt.Errorf("ticket: %d addresses, more than %d", len(t.Addrs), MaxAddrs)
	}
	if err := checkSecret(t.Secret); err != nil {
		return "", fmt.Errorf("ticket: %w", err)
	}
	var expiry uint64
	if !t.Expires.IsZero() {
		s := t.Expires.Unix()
		if s <= 0 || s > maxExpiry {
			return "", fmt.Errorf("ticket: expiry %s is out of range", t.Expires.UTC().Format(time.RFC3339))
		}
		expiry = uint64(s)
	}

	b := appendBytes(nil, []byte(t.Peer))
	b = appendBytes(b, []byte(t.Protocol))
	b = binary.AppendUvarint(b, uint64(len(t.Addrs)))
	for _, a := range t.Addrs {
		if len(a) == 0 {
			return "", errors.New("ticket: empty address")
		}
		if rest, id := peer.SplitAddr(a); id != "" {
			if id != t.Peer {
				return "", fmt.Errorf("ticket: address %s is for peer %s, not %s", a, id, t.Peer)
			}
			if len(rest) == 0 {
				return "", fmt.Errorf("ticket: address %s has no transport", a)
			}
			a = rest
		}
		if err := checkAddr(a); err != nil {
			return "", fmt.Errorf("ticket: %w", err)
		}
		b = appendBytes(b, a.Bytes())
	}
	b = appendBytes(b, t.Secret)
	b = binary.AppendUvarint(b, expiry)
	sum := sha256.Sum256(b)
	b = append(b, sum[:checksumLen]...)
	s := Prefix + encoding.EncodeToString(b)
	if len(s) > MaxLen {
		return "", fmt.Errorf("ticket: %d bytes long, more than %d; share fewer addresses", len(s), MaxLen)
	}
	return s, nil
}

// String returns the encoded ticket, or "<invalid ticket: …>" if t cannot
// be encoded.
func (t Ticket) String() string {
	s, err := t.Encode()
	if err != nil {
		return "<invalid ticket: " + err.Error() + ">"
	}
	return s
}

// IsTicket reports whether s looks like a ticket of any version (it starts
// with "p2ptun" and a digit), so that a caller can tell a ticket, possibly
// damaged, from another kind of argument. Decode says whether it is valid.
func IsTicket(s string) bool {
	s = strings.TrimSpace(s)
	return len(s) > len(brand) && asciiLower(s[:len(brand)]) == brand && s[len(brand)] >= '0' && s[len(brand)] <= '9'
}

// asciiLower lower-cases ASCII letters only: no other character may turn
// into part of a ticket.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

// Decode parses a ticket. Whitespace anywhere in s is ignored (a ticket
// wrapped by a mail program still decodes) and letters may be in either
// case. Errors wrap ErrNotTicket, ErrVersion or ErrDamaged, and say what
// is wrong in one line.
func Decode(s string) (Ticket, error) {
	s = strings.Join(strings.Fields(s), "")
	if !IsTicket(s) {
		return Ticket{}, ErrNotTicket
	}
	if len(s) > MaxLen {
		return Ticket{}, fmt.Errorf("%w: %d bytes long, more than %d", ErrDamaged, len(s), MaxLen)
	}
	if v := s[len(brand)]; v != Prefix[len(brand)] {
		return Ticket{}, fmt.Errorf("%w %c: this p2ptun reads %s… tickets; upgrade it, or ask for a ticket from this version", ErrVersion, v, Prefix)
	}
	text := asciiLower(s[len(Prefix):])
	b, err := encoding.DecodeString(text)
	var bad base32.CorruptInputError
	switch {
	case errors.As(err, &bad) && int(bad) < len(text) && strings.IndexByte(alphabet, text[bad]) < 0:
		r, _ := utf8.DecodeRuneInString(text[bad:])
		return Ticket{}, fmt.Errorf("%w: %q (at byte %d) is not part of any ticket; copy the whole line", ErrDamaged, r, len(Prefix)+int(bad)+1)
	case err != nil, encoding.EncodeToString(b) != text:
		// Base32 cannot end there, or its last character sets bits past
		// the end of the data (each ticket has exactly one text).
		return Ticket{}, fmt.Errorf("%w: it cannot end where it does (cut short?); copy the whole line", ErrDamaged)
	}
	if len(b) < checksumLen {
		return Ticket{}, fmt.Errorf("%w: too short; copy the whole line", ErrDamaged)
	}
	body, check := b[:len(b)-checksumLen], b[len(b)-checksumLen:]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:checksumLen], check) {
		return Ticket{}, fmt.Errorf("%w: checksum mismatch; copy the whole line, exactly", ErrDamaged)
	}
	t, err := unmarshal(body)
	if err != nil {
		return Ticket{}, fmt.Errorf("%w: %s", ErrDamaged, err)
	}
	return t, nil
}

// unmarshal parses the checked body of a ticket.
func unmarshal(b []byte) (Ticket, error) {
	r := reader{b: b}
	var t Ticket
	id, err := peer.IDFromBytes(r.bytes("peer ID", 128))
	if r.err != nil {
		return Ticket{}, r.err
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("bad peer ID: %v", err)
	}
	t.Peer = id
	t.Protocol = string(r.bytes("protocol", MaxProtocolLen))
	if r.err != nil {
		return Ticket{}, r.err
	}
	if err := checkProtocol(t.Protocol); err != nil {
		return Ticket{}, err
	}
	n := r.uvarint("address count")
	if r.err == nil && n > MaxAddrs {
		return Ticket{}, fmt.Errorf("%d addresses, more than %d", n, MaxAddrs)
	}
	for range n {
		raw := r.bytes("address", maxAddrLen)
		if r.err != nil {
			return Ticket{}, r.err
		}
		a, err := ma.NewMultiaddrBytes(raw)
		if err != nil {
			return Ticket{}, fmt.Errorf("bad address: %s", oneline.Error(err))
		}
		if err := checkAddr(a); err != nil {
			return Ticket{}, err
		}
		t.Addrs = append(t.Addrs, a)
	}
	if secret := r.bytes("secret", MaxSecretLen); len(secret) > 0 {
		t.Secret = bytes.Clone(secret)
	}
	expiry := r.uvarint("expiry")
	if r.err != nil {
		return Ticket{}, r.err
	}
	if err := checkSecret(t.Secret); err != nil {
		return Ticket{}, err
	}
	if expiry > maxExpiry {
		return Ticket{}, fmt.Errorf("expiry %d is out of range", expiry)
	}
	if expiry > 0 {
		t.Expires = time.Unix(int64(expiry), 0).UTC()
	}
	if len(r.b) > 0 {
		return Ticket{}, fmt.Errorf("%d unexpected bytes at the end", len(r.b))
	}
	return t, nil
}

func checkProtocol(p string) error {
	switch {
	case p == "":
		return errors.New("no protocol")
	case len(p) > MaxProtocolLen:
		return fmt.Errorf("protocol is %d bytes long, more than %d", len(p), MaxProtocolLen)
	case p[0] != '/':
		return fmt.Errorf("protocol %q does not start with /", p)
	case !utf8.ValidString(p):
		return errors.New("protocol is not valid UTF-8")
	case strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return fmt.Errorf("protocol %q contains spaces or control characters", p)
	}
	return nil
}

func checkSecret(s []byte) error {
	if len(s) != 0 && (len(s) < MinSecretLen || len(s) > MaxSecretLen) {
		return fmt.Errorf("invite secret is %d bytes, want %d to %d", len(s), MinSecretLen, MaxSecretLen)
	}
	return nil
}

// checkAddr refuses an address that names a peer at its end: the ticket's
// peer is implied, and any other would be a contradiction.
func checkAddr(a ma.Multiaddr) error {
	if len(a) == 0 {
		return errors.New("empty address")
	}
	if len(a.Bytes()) > maxAddrLen {
		return fmt.Errorf("address is %d bytes long, more than %d", len(a.Bytes()), maxAddrLen)
	}
	if a[len(a)-1].Code() == ma.P_P2P {
		return fmt.Errorf("address %s ends in a peer ID", a)
	}
	return nil
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// reader reads a ticket body's fields, keeping the first error.
type reader struct {
	b   []byte
	err error
}

// uvarint reads a minimally encoded unsigned varint.
func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
		r.err = fmt.Errorf("bad %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes reads a length-prefixed field of at most max bytes.
func (r *reader) bytes(what string, max int) []byte {
	n := r.uvarint(what + " length")
	if r.err != nil {
		return nil
	}
	if n > uint64(max) {
		r.err = fmt.Errorf("%s is %d bytes long, more than %d", what, n, max)
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%s is cut short", what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
