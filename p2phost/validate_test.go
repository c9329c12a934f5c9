package p2phost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/pnet"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
)

func psk(t *testing.T) pnet.PSK {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestPrivateNetworkRefusesQUIC(t *testing.T) {
	sk, _ := homedir.GenerateKey()
	for _, addr := range []string{"/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/udp/0/quic-v1/webtransport"} {
		_, err := New(Config{Key: sk, SwarmKey: psk(t), ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0"), ma.StringCast(addr)}})
		if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "TCP and WebSocket") {
			t.Errorf("%s with a swarm key: err = %v, want a config error naming the transports that work", addr, err)
		}
	}
	if _, err := New(Config{Key: sk, SwarmKey: psk(t), ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0/ws")}}); err != nil {
		t.Errorf("WebSocket with a swarm key: %v", err)
	}
}

func TestSwarmAddrsCheckedBeforeBinding(t *testing.T) {
	sk, err := homedir.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"/unix/tmp/p2ptun.sock", "/ip4/127.0.0.1/udp/0", "/dns4/localhost/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1/webtransport"} {
		if _, err := New(Config{Key: sk, ListenAddrs: []ma.Multiaddr{ma.StringCast(a)}}); !errors.Is(err, ErrUsage) {
			t.Errorf("New with listen address %s: err = %v, want ErrUsage", a, err)
		}
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for a, want := range map[string]error{
		fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", busy.Addr().(*net.TCPAddr).Port): ErrAddrInUse,
		"/ip4/192.0.2.1/tcp/0": ErrUsage, // TEST-NET-1: on no host
	} {
		h, err := New(Config{Key: sk, ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0"), ma.StringCast(a)}})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Start(context.Background()); !errors.Is(err, want) {
			t.Errorf("Start with listen address %s: err = %v, want %v", a, err, want)
		}
		if err := h.Close(); err != nil {
			t.Errorf("closing a host that did not start: %v", err)
		}
	}
}

// A host that does not start leaves nothing running (TestMain's goleak
// check): not the resource manager, not the connection manager.
func TestBadDHTModeFailsStartCleanly(t *testing.T) {
	sk, err := homedir.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Key: sk, ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}, DHT: "sometimes"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); !errors.Is(err, ErrUsage) {
		t.Fatalf("Start with DHT mode %q: err = %v, want ErrUsage", "sometimes", err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("closing a host that did not start: %v", err)
	}
}
