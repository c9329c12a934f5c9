package cli

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKuboPrivateNetwork checks the README's claim that --swarm-key takes
// kubo's swarm.key format and that kubo nodes with the same key join a
// p2ptun private network: with one key in kubo's IPFS_PATH and in p2ptun's
// --swarm-key, tunnels work both ways; a p2ptun node with another key or
// with none cannot reach the kubo node. Like TestKuboInterop it needs a kubo
// `ipfs` binary on PATH and keeps kubo on loopback.
func TestKuboPrivateNetwork(t *testing.T) {
	ipfsBin := kuboBinary(t)
	start := time.Now()

	key := kuboSwarmKey(t)
	k := startKubo(t, ipfsBin, kuboOptions{swarmKey: key})
	t.Logf("kubo daemon %s ready at %s with swarm.key (%s)", k.id, k.addr, time.Since(start).Round(time.Millisecond))

	p := startP2ptunDaemon(t, "--swarm-key", kuboWriteSwarmKey(t, key))
	t.Logf("p2ptun daemon %s ready at %s with --swarm-key", p.ID, p.addr)

	const size = 64 << 10

	// p2ptun forward -> kubo `ipfs p2p listen` -> TCP target.
	echo1 := startKuboEchoTarget(t, false)
	k.run(t, "p2p", "listen", "/x/pnet-kubo-echo", echo1.multiaddr())
	fwd1 := p.run(t, "forward", "/x/pnet-kubo-echo", "/ip4/127.0.0.1/tcp/0", k.addr)
	t.Run("p2ptun forward to kubo listen", func(t *testing.T) {
		kuboRoundTrip(t, fwd1, size)
		kuboRoundTrip(t, fwd1, 1)
	})

	// kubo `ipfs p2p forward` -> p2ptun listen -> TCP target.
	k.run(t, "swarm", "connect", p.addr)
	echo2 := startKuboEchoTarget(t, false)
	p.run(t, "listen", "/x/pnet-p2pt-echo", echo2.hostPort(), "--allow", k.id)
	k.run(t, "p2p", "forward", "/x/pnet-p2pt-echo", "/ip4/127.0.0.1/tcp/0", "/p2p/"+p.ID)
	fwd2 := k.forwardAddr(t, "/x/pnet-p2pt-echo")
	t.Run("kubo forward to p2ptun listen", func(t *testing.T) {
		kuboRoundTrip(t, fwd2, size)
		kuboRoundTrip(t, fwd2, 1)
	})

	// Outsiders: another key, or none. Without a key p2ptun reads kubo's
	// pnet nonce as a multistream message and fails at once. With another
	// key each side decrypts the other's multistream header to garbage: a
	// huge length prefix fails at once, a plausible one makes both sides
	// wait for more, so then the dial fails only at go-libp2p's 5s timeout
	// for a local (here loopback) address. How long it took is logged, not
	// asserted: on a busy machine either may be slow.
	outsiders := []struct {
		name  string
		flags []string
	}{
		{"another swarm key", []string{"--swarm-key", kuboWriteSwarmKey(t, kuboSwarmKey(t))}},
		{"no swarm key", nil},
	}
	for _, o := range outsiders {
		t.Run("p2ptun with "+o.name+" cannot reach kubo", func(t *testing.T) {
			q := startP2ptunDaemon(t, o.flags...)
			began := time.Now()
			stdout, stderr, code := q.CLI(t, "forward", "/x/pnet-kubo-echo", "/ip4/127.0.0.1/tcp/0", k.addr)
			took := time.Since(began)
			t.Logf("forward exited %d after %s: %s", code, took.Round(time.Millisecond), strings.TrimSpace(stderr))
			if code != ExitUnreachable {
				t.Errorf("forward to kubo: exit %d, want %d (ExitUnreachable)\nstdout: %s\nstderr: %s",
					code, ExitUnreachable, stdout, stderr)
			}
			if peers := k.run(t, "swarm", "peers"); strings.Contains(peers, q.ID) {
				t.Errorf("kubo is connected to the outsider %s:\n%s", q.ID, peers)
			}
		})
	}

	// The members are still connected after the outsiders were refused.
	t.Run("members still connected", func(t *testing.T) {
		if peers := k.run(t, "swarm", "peers"); !strings.Contains(peers, "/p2p/"+p.ID) {
			t.Errorf("ipfs swarm peers lacks the p2ptun member %s:\n%s", p.ID, peers)
		}
		kuboRoundTrip(t, fwd1, 1)
	})

	t.Logf("kubo private network total %s", time.Since(start).Round(time.Millisecond))
}

// kuboSwarmKey returns a fresh swarm.key in kubo's format: the header
// /key/swarm/psk/1.0.0/, the encoding /base16/, and 32 random bytes in hex.
func kuboSwarmKey(t *testing.T) []byte {
	t.Helper()
	psk := make([]byte, 32)
	if _, err := rand.Read(psk); err != nil {
		t.Fatal(err)
	}
	return fmt.Appendf(nil, "/key/swarm/psk/1.0.0/\n/base16/\n%x\n", psk)
}

// kuboWriteSwarmKey writes key to a fresh 0600 file and returns its path.
func kuboWriteSwarmKey(t *testing.T, key []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "swarm.key")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
