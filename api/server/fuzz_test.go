package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/p2phost"
)

// postRoutes are the routes that take a request body; the fuzzer's route
// byte picks one (modulo their number).
var postRoutes = []string{
	"/v0/listeners/listen",
	"/v0/listeners/forward",
	"/v0/listeners/close",
	"/v0/streams/close",
	"/v0/share",
}

// fuzzPeerID is the peer that FuzzRequestBody starts beside the node under
// test, so forward requests can succeed. Its key comes from a fixed seed,
// so the checked-in corpus can name it.
const fuzzPeerID = "12D3KooWHMjc3FHGdH3fUgidhsXCU1DwaT8qAPJVAnG42nWrXfPw"

// FuzzRequestBody serves arbitrary bodies to the POST routes: the server
// must not panic, and must answer 200 with a JSON reply or an error status
// with a JSON error that has a code and a one-line message. Nothing leaves
// loopback: forward requests that could dial or bind anything else are
// skipped, and every listener a request opens is closed before the next.
func FuzzRequestBody(f *testing.F) {
	n := startNode(f, nil)
	seed := sha256.Sum256([]byte("p2ptun fuzz peer"))
	sk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		f.Fatal(err)
	}
	other := startNode(f, sk)
	if id := other.Host().ID().String(); id != fuzzPeerID {
		f.Fatalf("fixed-seed peer is %s, want %s (update the corpus)", id, fuzzPeerID)
	}
	n.Host().Peerstore().AddAddrs(other.Host().ID(), other.Host().Addrs(), peerstore.PermanentAddrTTL)
	h := New(n, "", quiet).routes()

	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		if len(body) > 2*maxBody {
			t.Skip("body larger than twice the limit")
		}
		path := postRoutes[int(route)%len(postRoutes)]
		if path == "/v0/listeners/forward" {
			if why := offLoopback(body); why != "" {
				t.Skip(why)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		t.Cleanup(func() {
			// Every input starts from no listeners.
			if _, err := n.CloseListeners(context.Background(), node.CloseRequest{All: true}); err != nil && !errors.Is(err, node.ErrNotFound) {
				t.Errorf("closing listeners: %v", err)
			}
			if l := n.Listeners(); len(l) != 0 {
				t.Errorf("listeners left open: %+v", l)
			}
		})

		req := httptest.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		resp := rec.Result()
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q, want application/json", path, ct)
		}
		out := rec.Body.Bytes()
		t.Logf("%s %q -> %d %s", path, body, resp.StatusCode, out)
		if resp.StatusCode == http.StatusOK {
			var v any = &api.Closed{}
			switch {
			case strings.HasSuffix(path, "/listen") || strings.HasSuffix(path, "/forward"):
				v = &api.Listener{}
			case strings.HasSuffix(path, "/share"):
				v = &api.Share{}
			}
			if err := json.Unmarshal(out, v); err != nil {
				t.Fatalf("%s: 200 with a body that is not its JSON reply (%v): %q", path, err, out)
			}
			return
		}
		if resp.StatusCode < 400 || resp.StatusCode > 599 {
			t.Fatalf("%s: status %d, want 200, 4xx or 5xx; body %q", path, resp.StatusCode, out)
		}
		var eb errorBody
		if err := json.Unmarshal(out, &eb); err != nil {
			t.Fatalf("%s: status %d with a body that is not a JSON error (%v): %q", path, resp.StatusCode, err, out)
		}
		if eb.Code == "" || eb.Error == "" {
			t.Fatalf("%s: status %d with an empty code or message: %+v", path, resp.StatusCode, eb)
		}
		if strings.ContainsAny(eb.Error, "\r\n") {
			t.Fatalf("%s: error message is not one line: %q", path, eb.Error)
		}
	})
}

// startNode starts a node with key sk (a new one if nil) on loopback, with
// a short dial timeout, and closes it at cleanup.
func startNode(tb testing.TB, sk crypto.PrivKey) *node.Node {
	tb.Helper()
	if sk == nil {
		var err error
		if sk, err = homedir.GenerateKey(); err != nil {
			tb.Fatal(err)
		}
	}
	n, err := node.New(node.Options{Config: p2phost.Config{
		Key:         sk,
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		Timeouts:    config.Timeouts{Dial: config.D(500 * time.Millisecond), StreamOpen: config.D(500 * time.Millisecond)},
		Logger:      quiet,
	}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := n.Start(testContext(tb)); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := n.Close(); err != nil {
			tb.Errorf("node Close: %v", err)
		}
	})
	return n
}

// offLoopback says why a forward request body could make the node dial or
// bind outside loopback, or returns "" if it cannot. It decodes the body
// as the server does and parses it into the spec the node would be given,
// so no spelling (key case, escapes, host:port forms) can slip past: a
// body or address they reject never reaches a dial or a bind.
func offLoopback(body []byte) string {
	var req api.ForwardRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(&req) != nil {
		return ""
	}
	sp, err := req.Spec(nil)
	if err != nil {
		return "" // refused before any dial or bind
	}
	if !loopbackOnly(sp.Listen) {
		return "listen address is not loopback: " + sp.Listen.String()
	}
	// A fixed port could take one that another process on this machine
	// is about to use.
	if port, _ := sp.Listen.ValueForProtocol(ma.P_TCP); port != "0" {
		return "listen address has a fixed port: " + sp.Listen.String()
	}
	for _, a := range sp.Peer.Addrs {
		if !loopbackOnly(a) {
			return "peer address is not loopback-only: " + a.String()
		}
	}
	return ""
}

// loopbackOnly reports whether every IP in m is a loopback address and m
// has nothing that resolves or dials by name: only IP, TCP, UDP, QUIC,
// WebSocket, peer ID and relay components.
func loopbackOnly(m ma.Multiaddr) bool {
	for _, c := range m {
		switch c.Code() {
		case ma.P_IP4, ma.P_IP6:
			if !net.IP(c.RawValue()).IsLoopback() {
				return false
			}
		case ma.P_TCP, ma.P_UDP, ma.P_QUIC_V1, ma.P_WS, ma.P_P2P, ma.P_CIRCUIT:
		default:
			return false
		}
	}
	return true
}
