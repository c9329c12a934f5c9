package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/config/homedir"
	"github.com/p2ptun/p2ptun/internal/logbuf"
	"github.com/p2ptun/p2ptun/internal/testnet"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/p2phost"
	"github.com/p2ptun/p2ptun/spec"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// errorBody is the body of a failed request (api.WriteError's).
type errorBody struct{ Error, Code string }

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newNode starts a node on loopback and closes it at cleanup.
// mustListen parses r as the server does, for tests that ask a node
// directly.
func mustListen(t testing.TB, r spec.Request) spec.Spec {
	t.Helper()
	s, err := spec.ParseListen(r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newNode(t testing.TB) *node.Node {
	t.Helper()
	sk, err := homedir.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Options{Config: p2phost.Config{
		Key:         sk,
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		Logger:      quiet,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(testContext(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("node Close: %v", err)
		}
	})
	return n
}

// startServer serves n on path and closes the server at cleanup.
func startServer(t *testing.T, n *node.Node, path string) *Server {
	t.Helper()
	s := New(n, path, quiet)
	if err := s.Start(testContext(t)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("server Close: %v", err)
		}
	})
	return s
}

// randomPeer returns the ID of a peer that does not exist.
func randomPeer(t testing.TB) peer.ID {
	t.Helper()
	sk, err := homedir.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// deadPort returns a loopback TCP port that nothing listens on.
func deadPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

// staleSocket leaves a socket file at path with nothing listening on it,
// as a daemon that died would.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("stale socket not left behind: %v, %v", fi, err)
	}
}

func assertGone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists (Lstat: %v)", path, err)
	}
}

func TestSocketMode(t *testing.T) {
	n := newNode(t)
	p := testnet.SocketPath(t)
	startServer(t, n, p)
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		t.Errorf("%s is %v, want a socket", p, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode = %#o, want 0600", perm)
	}
}

func TestSecondServerRefused(t *testing.T) {
	n := newNode(t)
	p := testnet.SocketPath(t)
	startServer(t, n, p)
	ctx := testContext(t)

	second := New(n, p, quiet)
	err := second.Start(ctx)
	if !errors.Is(err, api.ErrDaemonRunning) {
		t.Fatalf("second Start = %v, want ErrDaemonRunning", err)
	}
	if err := second.Close(ctx); err != nil {
		t.Errorf("Close of the refused server: %v", err)
	}

	// The first server keeps its socket and still answers.
	if _, err := os.Lstat(p); err != nil {
		t.Fatalf("first server's socket: %v", err)
	}
	id, err := api.NewClient(p).ID(ctx)
	if err != nil {
		t.Fatalf("first server no longer answers: %v", err)
	}
	if want := n.Host().ID().String(); id.ID != want {
		t.Errorf("ID = %s, want %s", id.ID, want)
	}
}

func TestStaleSocketRemoved(t *testing.T) {
	n := newNode(t)
	p := testnet.SocketPath(t)
	staleSocket(t, p)
	startServer(t, n, p)
	ctx := testContext(t)
	if _, err := api.NewClient(p).ID(ctx); err != nil {
		t.Fatalf("server on a stale socket path does not answer: %v", err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode = %#o, want 0600", perm)
	}
}

func TestStartLeavesNonSocketFilesAlone(t *testing.T) {
	n := newNode(t)
	p := testnet.SocketPath(t)
	if err := os.WriteFile(p, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := New(n, p, nil)
	err := srv.Start(testContext(t))
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Start over a regular file: err = %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "precious" {
		t.Fatalf("the file at the socket path was changed: %q", b)
	}
	if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) != 1 {
		t.Fatalf("Start left files behind: %v", entries)
	}
}

func TestCloseRemovesSocket(t *testing.T) {
	n := newNode(t)
	p := testnet.SocketPath(t)
	s := New(n, p, quiet)
	ctx := testContext(t)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertGone(t, p)
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	assertGone(t, p)
	if _, err := api.NewClient(p).ID(ctx); !errors.Is(err, api.ErrDaemonNotRunning) {
		t.Errorf("ID after Close = %v, want ErrDaemonNotRunning", err)
	}
	if err := s.Start(ctx); err == nil {
		t.Error("Start after Close succeeded")
		_ = s.Close(ctx)
	}
}

func TestClient(t *testing.T) {
	n := newNode(t)
	p := testnet.SocketPath(t)
	startServer(t, n, p)
	c := api.NewClient(p)
	ctx := testContext(t)

	t.Run("ID", func(t *testing.T) {
		id, err := c.ID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := n.Identity()
		if id.ID != want.ID || id.ID != n.Host().ID().String() {
			t.Errorf("ID = %s, want %s", id.ID, n.Host().ID())
		}
		if strings.Join(id.Addresses, " ") != strings.Join(want.Addresses, " ") || len(id.Addresses) == 0 {
			t.Errorf("Addresses = %q, want %q", id.Addresses, want.Addresses)
		}
	})

	t.Run("ListenBadProtocol", func(t *testing.T) {
		_, err := c.Listen(ctx, api.ListenRequest{Protocol: "web", Target: "/ip4/127.0.0.1/tcp/8080", AllowAll: true})
		if !errors.Is(err, node.ErrUsage) {
			t.Fatalf("Listen = %v, want ErrUsage", err)
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || msg == "" {
			t.Errorf("error is not one line: %q", msg)
		}
		if l := n.Listeners(); len(l) != 0 {
			t.Errorf("failed Listen registered %+v", l)
		}
	})

	allowed := randomPeer(t).String()
	t.Run("ListenThenList", func(t *testing.T) {
		l, err := c.Listen(ctx, api.ListenRequest{Protocol: "/x/web", Target: "127.0.0.1:8080", Allow: []string{allowed}})
		if err != nil {
			t.Fatal(err)
		}
		if l.Protocol != "/x/web" || l.Kind != "listen" || l.TargetAddress != "/ip4/127.0.0.1/tcp/8080" {
			t.Errorf("Listen returned %+v", l)
		}
		list, err := c.Listeners(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Listeners) != 1 {
			t.Fatalf("Listeners = %+v, want the one listener", list.Listeners)
		}
		got := list.Listeners[0]
		if got.ID != l.ID || got.Protocol != "/x/web" || got.Kind != "listen" ||
			got.TargetAddress != "/ip4/127.0.0.1/tcp/8080" ||
			got.ListenAddress != "/p2p/"+n.Host().ID().String() ||
			len(got.AllowedPeers) != 1 || got.AllowedPeers[0] != allowed || got.AllowAll {
			t.Errorf("Listeners[0] = %+v", got)
		}
	})

	t.Run("CloseListenersNoMatch", func(t *testing.T) {
		_, err := c.CloseListeners(ctx, api.CloseRequest{Protocol: "/x/nothing"})
		if !errors.Is(err, node.ErrNotFound) {
			t.Fatalf("CloseListeners = %v, want ErrNotFound", err)
		}
		if errors.Is(err, node.ErrUsage) {
			t.Errorf("CloseListeners error also matches ErrUsage: %v", err)
		}
		if got := len(n.Listeners()); got != 1 {
			t.Errorf("%d listeners after closing nothing, want 1", got)
		}
	})

	t.Run("CloseStreams", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			req  api.StreamCloseRequest
			want error
		}{
			{"NotANumber", api.StreamCloseRequest{ID: "abc"}, node.ErrUsage},
			{"UnknownID", api.StreamCloseRequest{ID: "9"}, node.ErrNotFound},
			{"Neither", api.StreamCloseRequest{}, node.ErrUsage},
			{"Both", api.StreamCloseRequest{ID: "9", All: true}, node.ErrUsage},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := c.CloseStreams(ctx, tc.req)
				if !errors.Is(err, tc.want) {
					t.Fatalf("CloseStreams(%+v) = %v, want %v", tc.req, err, tc.want)
				}
				for _, other := range []error{node.ErrUsage, node.ErrNotFound} {
					if other != tc.want && errors.Is(err, other) {
						t.Errorf("CloseStreams(%+v) = %v, also matches %v", tc.req, err, other)
					}
				}
			})
		}
	})

	t.Run("ForwardUnreachable", func(t *testing.T) {
		target := "/ip4/127.0.0.1/tcp/" + deadPort(t) + "/p2p/" + randomPeer(t).String()
		_, err := c.Forward(ctx, api.ForwardRequest{Protocol: "/x/web", ListenAddress: "/ip4/127.0.0.1/tcp/0", Peer: target})
		if !errors.Is(err, node.ErrUnreachable) {
			t.Fatalf("Forward = %v, want ErrUnreachable", err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("error is not one line: %q", err)
		}
		for _, l := range n.Listeners() {
			if l.Kind == "forward" {
				t.Errorf("failed Forward registered %+v", l)
			}
		}
	})
}

// rawClient talks HTTP to the socket at path without the API client.
func rawClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}
}

func TestBadRequestBody(t *testing.T) {
	n := newNode(t)
	p := testnet.SocketPath(t)
	startServer(t, n, p)
	hc := rawClient(p)
	ctx := testContext(t)

	big := `{"Protocol":"/x/` + strings.Repeat("a", maxBody) + `","Target":"127.0.0.1:8080","AllowAll":true}`
	for _, tc := range []struct {
		name, path, body string
	}{
		{"UnknownField", "/v0/listeners/listen", `{"Protocol":"/x/web","Target":"127.0.0.1:8080","AllowAll":true,"Bogus":1}`},
		{"UnknownFieldClose", "/v0/streams/close", `{"All":true,"Everything":true}`},
		{"TooLarge", "/v0/listeners/listen", big},
		{"TooMuchLeadingSpace", "/v0/listeners/close", strings.Repeat(" ", maxBody+1) + `{"All":true}`},
		{"TrailingData", "/v0/listeners/listen", `{"Protocol":"/x/t","Target":"127.0.0.1:1","AllowAll":true} junk`},
		{"TwoObjects", "/v0/listeners/listen", `{"Protocol":"/x/t","Target":"127.0.0.1:1","AllowAll":true}{}`},
		{"TrailingPadding", "/v0/listeners/listen", `{"Protocol":"/x/t","Target":"127.0.0.1:1","AllowAll":true}` + strings.Repeat(" ", maxBody)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://p2ptun"+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status = %s, want 400; body %s", resp.Status, b)
			}
			var eb errorBody
			if err := json.NewDecoder(bytes.NewReader(b)).Decode(&eb); err != nil || eb.Code != "usage" || eb.Error == "" {
				t.Errorf("body = %s (%v), want an error with code usage", b, err)
			}
		})
	}
	if l := n.Listeners(); len(l) != 0 {
		t.Errorf("rejected requests registered %+v", l)
	}
}

func TestClientNoDaemon(t *testing.T) {
	ctx := testContext(t)
	missing := testnet.SocketPath(t)
	stale := testnet.SocketPath(t)
	staleSocket(t, stale)
	for _, tc := range []struct{ name, path string }{
		{"NoSocket", missing},
		{"StaleSocket", stale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := api.NewClient(tc.path).ID(ctx)
			if !errors.Is(err, api.ErrDaemonNotRunning) {
				t.Fatalf("ID = %v, want ErrDaemonNotRunning", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "`p2ptun daemon`") || !strings.Contains(msg, tc.path) {
				t.Errorf("message %q should name the socket and say to run `p2ptun daemon`", msg)
			}
		})
	}
}

func TestOtherUserRefused(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("peer credentials are checked on Linux only")
	}
	n := newNode(t)
	p := testnet.SocketPath(t)
	ctx := testContext(t)
	var logs logbuf.Buffer
	s := New(n, p, slog.New(slog.NewTextHandler(&logs, nil)))
	if s.AllowedUID != os.Getuid() {
		t.Fatalf("default AllowedUID = %d, want os.Getuid() = %d", s.AllowedUID, os.Getuid())
	}
	// This process now counts as another user, even as root.
	s.AllowedUID = os.Getuid() + 1
	s.rootUID = -1
	if err := s.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("server Close: %v", err)
		}
	})

	// Through the client: the request fails, and the handler, which would
	// register a listener, never runs.
	_, err := api.NewClient(p).Listen(ctx, api.ListenRequest{Protocol: "/x/refused", Target: "127.0.0.1:8080", AllowAll: true})
	if !errors.Is(err, node.ErrDenied) {
		t.Fatalf("Listen from another uid: %v, want node.ErrDenied", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "[api] group") {
		t.Errorf("refusal %q: want one line that says who may use the socket", msg)
	}
	if l := n.Listeners(); len(l) != 0 {
		t.Errorf("the handler ran for a refused connection: %+v", l)
	}

	// A raw connection gets a 403 and is closed. Its being accepted at
	// all shows Accept went on after the first refusal.
	c, err := net.Dial("unix", p)
	if err != nil {
		t.Fatalf("second connection: %v", err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /v0/id HTTP/1.1\r\nHost: p2ptun\r\n\r\n") // may fail once refused
	if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a refused connection was left open")
	}
	if !bytes.HasPrefix(b, []byte("HTTP/1.1 403 ")) {
		t.Errorf("a refused connection got %q, want a 403", b)
	}

	// One Warn line per refused connection, naming the peer's uid and pid.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log has %d lines, want one per refused connection (2):\n%s", len(lines), logs.String())
	}
	want := fmt.Sprintf("uid=%d pid=%d", os.Getuid(), os.Getpid())
	for _, l := range lines {
		if !strings.Contains(l, "level=WARN") || !strings.Contains(l, "refused") || !strings.Contains(l, want) {
			t.Errorf("log line %q: want a WARN refusal with %s", l, want)
		}
	}
}

func TestUnsafeSocketDirRefused(t *testing.T) {
	n := newNode(t)
	ctx := testContext(t)
	for _, tc := range []struct {
		name  string
		mode  os.FileMode
		want  string // the mode as the error shows it
		chmod bool   // whether the error should say to chmod
	}{
		{"WorldWritable", 0o777, "0777", true},
		{"GroupWritable", 0o770, "0770", true},
		{"OthersWriteOnly", 0o702, "0702", true},
		// Shared like /tmp: chmod would break it for others.
		{"StickyLikeTmp", 0o777 | os.ModeSticky, "1777", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testnet.SocketPath(t)
			dir := filepath.Dir(p)
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			s := New(n, p, quiet)
			err := s.Start(ctx)
			t.Cleanup(func() { _ = s.Close(context.Background()) })
			if !errors.Is(err, api.ErrUnsafeSocketDir) {
				t.Fatalf("Start in a %s directory = %v, want ErrUnsafeSocketDir", tc.want, err)
			}
			msg := err.Error()
			for _, w := range []string{dir + " ", "mode " + tc.want, "--api"} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if chmod := "`chmod 700 " + dir + "`"; strings.Contains(msg, chmod) != tc.chmod {
				t.Errorf("error %q: mentions %s = %v, want %v", msg, chmod, !tc.chmod, tc.chmod)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			t.Log(msg)
			if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
				t.Errorf("refused Start left %v in %s (%v)", entries, dir, err)
			}
		})
	}
}

func TestSocketDirOwnedByAnotherUserRefused(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the socket directory's owner is checked on Linux only")
	}
	n := newNode(t)
	ctx := testContext(t)
	p := testnet.SocketPath(t)
	dir := filepath.Dir(p)
	const other = 4242
	if os.Geteuid() == other {
		t.Skipf("running as uid %d", other)
	}
	if err := os.Chown(dir, other, -1); err != nil {
		t.Skipf("cannot give %s to another user: %v", dir, err)
	}
	// Writable by others too: the owner is what the error must name,
	// since only the owner could chmod.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	s := New(n, p, quiet)
	err := s.Start(ctx)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if !errors.Is(err, api.ErrUnsafeSocketDir) {
		t.Fatalf("Start in a directory owned by uid %d = %v, want ErrUnsafeSocketDir", other, err)
	}
	msg := err.Error()
	for _, w := range []string{dir + " ", fmt.Sprintf("owned by uid %d", other), "--api"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
	if strings.Contains(msg, "chmod") {
		t.Errorf("error %q suggests chmod, which only uid %d could run", msg, other)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("refused Start left %v in %s (%v)", entries, dir, err)
	}
}

func TestPrivateSocketDirAccepted(t *testing.T) {
	n := newNode(t)
	ctx := testContext(t)
	for _, mode := range []os.FileMode{0o700, 0o755} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			p := testnet.SocketPath(t)
			if err := os.Chmod(filepath.Dir(p), mode); err != nil {
				t.Fatal(err)
			}
			startServer(t, n, p)
			if _, err := api.NewClient(p).ID(ctx); err != nil {
				t.Fatalf("server in a %04o directory does not answer: %v", mode, err)
			}
		})
	}
}
