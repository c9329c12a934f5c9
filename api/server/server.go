package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2ptun/p2ptun/api"
	"github.com/p2ptun/p2ptun/node"
	"github.com/p2ptun/p2ptun/spec"
)

// maxBody bounds request bodies; every request is a small JSON object.
const maxBody = 64 << 10

// Server serves the control API for one node on a Unix socket.
type Server struct {
	// AllowedUID is the only user whose processes may use the API. New
	// sets it to os.Getuid(); change it before Start, not after. A
	// connection from any other uid is closed unanswered and logged at
	// Warn. Checked on Linux (SO_PEERCRED); elsewhere the socket's 0600
	// mode is the only guard.
	AllowedUID int

	// AllowedGID is the operator group ([api] group): its members may use
	// the API too, and the socket (0660) and its directory (0750) get this
	// group. -1, New's default, means none: the socket is 0600. Root may
	// always use the API. Set before Start.
	AllowedGID int

	// Reload re-reads the config file and applies it (POST /v0/reload);
	// nil answers that this daemon has nothing to reload. Set before Start.
	Reload func(context.Context) (api.ReloadReply, error)

	// Aliases returns the names of peers ([peers]) that requests may use
	// for a peer, and that replies and events show beside peer IDs; nil:
	// none. SetPeerName saves a name (addr "" removes it) so that Aliases
	// returns it from then on; nil answers that this daemon saves none.
	// Set before Start.
	Aliases     func() spec.Aliases
	SetPeerName func(ctx context.Context, name, addr string) error

	ready atomic.Bool // the daemon has made its first attempt at every tunnel

	// rootUID is the uid allowed beside AllowedUID and the group: 0.
	// Tests that run as root set -1 to be refused.
	rootUID int

	node   *node.Node
	path   string
	origin string // path as the origin of the pipes opened through it
	log    *slog.Logger

	// life ends when Close begins; it bounds every pipe, whose
	// connections http.Server no longer tracks once hijacked, and every
	// event stream, which Shutdown would otherwise wait for.
	life    context.Context
	endLife context.CancelFunc

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	closed  bool
	undoDir func() error // puts the socket directory back as Start found it
	serving sync.WaitGroup
	pipes   sync.WaitGroup // one per pipe request, from decode to the end of its bridge
}

// New returns a server for n on the Unix socket at path.
func New(n *node.Node, path string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	life, end := context.WithCancel(context.Background())
	return &Server{AllowedUID: os.Getuid(), AllowedGID: -1, node: n, path: path, origin: unixOrigin(path), log: log, life: life, endLife: end}
}

// Start binds the socket with mode 0600 (0660 and group AllowedGID, whose
// directory it then makes 0750 and AllowedGID's) and starts serving
// connections from AllowedUID, root and AllowedGID only. It fails with
// api.ErrUnsafeSocketDir, having touched nothing, if the socket's
// directory is writable by group or others, (on Linux) owned by another
// user, or open to a group that is not AllowedGID; with api.ErrDaemonRunning if another daemon answers
// on the socket; and removes a stale socket left by one that died. A
// failed Start leaves the directory's mode and group as it found them
// (RestoreSocketDir undoes a Start that succeeded).
func (s *Server) Start(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	undo, err := checkSocketDir(filepath.Dir(s.path), s.AllowedGID)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = joinUndo(err, undo)
		}
	}()
	if fi, err := os.Lstat(s.path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return fmt.Errorf("api socket %s: a file that is not a socket is in the way; move it or choose another --api path", s.path)
		}
		d := net.Dialer{Timeout: time.Second}
		if c, err := d.DialContext(ctx, "unix", s.path); err == nil {
			c.Close()
			return fmt.Errorf("%w on %s: stop it first, or use another --home/--api", api.ErrDaemonRunning, s.path)
		}
		if err := os.Remove(s.path); err != nil {
			return fmt.Errorf("removing stale api socket: %w", err)
		}
	}
	ln, err := listenPrivate(s.path, s.AllowedGID)
	if err != nil {
		return fmt.Errorf("api socket %s: %w", s.path, err)
	}
	s.ln = withReserve(ownerOnly(ln, s.AllowedUID, s.rootUID, s.AllowedGID, s.log))
	s.srv = &http.Server{Handler: refuseOthers(s.routes()), ConnContext: connContext, ReadHeaderTimeout: 5 * time.Second}
	s.serving.Go(func() {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api server failed", "err", err)
		}
	})
	s.undoDir = undo
	return nil
}

// RestoreSocketDir gives the socket's directory back the mode and group
// Start found it with, for a daemon whose start failed after Start: the
// [api] group's 0750 is not left behind. A daemon that stops normally
// keeps it, so that its group's members see "no daemon running" rather
// than "permission denied". Call it after Close; it is a no-op if Start
// changed nothing or did not run.
func (s *Server) RestoreSocketDir() error {
	s.mu.Lock()
	undo := s.undoDir
	s.undoDir = nil
	s.mu.Unlock()
	if undo == nil {
		return nil
	}
	return undo()
}

// Close stops accepting requests, aborts pipes (their streams are reset),
// waits up to the context's deadline for running requests, and removes the
// socket. It is idempotent.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	s.endLife()
	var err error
	if srv != nil {
		if err = srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		s.serving.Wait()
		// Pipes were aborted above; their bridges end at once.
		s.pipes.Wait()
		if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// checkSocketDir refuses a socket directory in which another user could
// replace or pre-empt the socket: one writable by group or others, or owned
// by a user other than the one this process creates files as. With an
// operator group (gid >= 0) it also refuses a directory that a group other
// than gid may read or search, and then gives the directory to gid with
// mode 0750. It returns the func that puts the directory's mode and group
// back as they were; when it fails, it has put them back itself.
func checkSocketDir(dir string, gid int) (undo func() error, err error) {
	undo = func() error { return nil }
	fi, err := os.Stat(dir)
	if err != nil {
		return undo, fmt.Errorf("api socket directory: %w", err)
	}
	if !fi.IsDir() {
		return undo, fmt.Errorf("api socket directory %s is not a directory; choose another --api path", dir)
	}
	// The owner first: only the owner can chmod.
	uid, dirGID, known := fileOwner(fi)
	if known && uid != os.Geteuid() {
		return undo, fmt.Errorf("%w: %s is owned by uid %d, not by this daemon's uid %d: choose another --api path, in a directory you own",
			api.ErrUnsafeSocketDir, dir, uid, os.Geteuid())
	}
	if m := fi.Mode(); m.Perm()&0o022 != 0 {
		if m&os.ModeSticky != 0 {
			// Shared, like /tmp: chmod would break it for everyone else.
			return undo, fmt.Errorf("%w: %s is a shared directory (mode %04o): choose another --api path, in a directory only you can write",
				api.ErrUnsafeSocketDir, dir, unixPerm(m))
		}
		return undo, fmt.Errorf("%w: %s is writable by group or others (mode %04o): run `chmod 700 %s`, or choose another --api path",
			api.ErrUnsafeSocketDir, dir, unixPerm(m), dir)
	}
	if gid < 0 {
		return undo, nil
	}
	if m := fi.Mode(); m.Perm()&0o070 != 0 && known && dirGID != gid {
		return undo, fmt.Errorf("%w: %s is open to group %d, not to the [api] group (gid %d): run `chmod 700 %s`, or choose another --api path",
			api.ErrUnsafeSocketDir, dir, dirGID, gid, dir)
	}
	undo = func() error {
		err := os.Chmod(dir, fi.Mode()&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky))
		if known {
			err = errors.Join(err, os.Chown(dir, -1, dirGID))
		}
		if err != nil {
			return fmt.Errorf("restoring the mode and group of %s: %w", dir, err)
		}
		return nil
	}
	if err := os.Chown(dir, -1, gid); err != nil {
		return undo, joinUndo(fmt.Errorf("%w: giving %s to the [api] group (gid %d): %w: make the daemon's user a member of that group", api.ErrUnsafeSocketDir, dir, gid, err), undo)
	}
	if err := os.Chmod(dir, fi.Mode().Perm()&0o705|0o050); err != nil {
		return undo, joinUndo(fmt.Errorf("api socket directory: %w", err), undo)
	}
	return undo, nil
}

// joinUndo runs undo after err, and returns err, with undo's own error if
// it failed.
func joinUndo(err error, undo func() error) error {
	if uerr := undo(); uerr != nil {
		return errors.Join(err, uerr)
	}
	return err
}

// unixPerm returns m's permission bits as chmod(1) and ls(1) show them,
// with the setuid, setgid and sticky bits (/tmp is 1777).
func unixPerm(m os.FileMode) uint32 {
	p := uint32(m.Perm())
	for _, b := range []struct {
		mode os.FileMode
		bit  uint32
	}{{os.ModeSetuid, 0o4000}, {os.ModeSetgid, 0o2000}, {os.ModeSticky, 0o1000}} {
		if m&b.mode != 0 {
			p |= b.bit
		}
	}
	return p
}

// listenPrivate binds a Unix socket at path that is never reachable with
// looser permissions than 0600 (0660 for group gid, if gid >= 0): it is
// created inside a fresh 0700 directory, chmodded, then renamed into place.
func listenPrivate(path string, gid int) (*net.UnixListener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".api-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// The socket file moves; Close removes it by its final name.
	ln.SetUnlinkOnClose(false)
	mode := fs.FileMode(0o600)
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			ln.Close()
			return nil, err
		}
		mode = 0o660
	}
	if err := os.Chmod(tmp, mode); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.accessRoutes(mux)
	s.peerRoutes(mux)
	s.eventRoutes(mux)
	s.tunnelRoutes(mux)
	mux.HandleFunc("POST /v0/pipe", s.pipe)
	mux.HandleFunc("GET /v0/id", func(w http.ResponseWriter, r *http.Request) {
		reply(w, api.IdentityFrom(s.node.Identity()), nil)
	})
	mux.HandleFunc("GET /v0/listeners", func(w http.ResponseWriter, r *http.Request) {
		out := api.ListenerList{Listeners: []api.Listener{}}
		for _, l := range s.node.Listeners() {
			out.Listeners = append(out.Listeners, api.ListenerFrom(l).Named(s.aliases()))
		}
		reply(w, out, nil)
	})
	mux.HandleFunc("POST /v0/listeners/listen", openTunnel[api.ListenRequest](s, s.node.Listen))
	mux.HandleFunc("POST /v0/listeners/forward", openTunnel[api.ForwardRequest](s, s.node.Forward))
	mux.HandleFunc("POST /v0/listeners/close", func(w http.ResponseWriter, r *http.Request) {
		var req api.CloseRequest
		if !decode(w, r, &req) {
			return
		}
		n, err := s.node.CloseListeners(r.Context(), req.ToNode())
		reply(w, api.Closed{Closed: n}, err)
	})
	mux.HandleFunc("POST /v0/share", func(w http.ResponseWriter, r *http.Request) {
		var req api.ShareRequest
		if !decode(w, r, &req) {
			return
		}
		res, err := s.node.Share(r.Context(), req.ToNode())
		sh := api.ShareFrom(res)
		if sh.Addresses == nil {
			sh.Addresses = []string{}
		}
		reply(w, sh, err)
	})
	mux.HandleFunc("POST /v0/ping", func(w http.ResponseWriter, r *http.Request) {
		var req api.PingRequest
		if !decode(w, r, &req) {
			return
		}
		peer, err := s.aliases().Resolve(req.Peer)
		if err != nil {
			reply(w, nil, err)
			return
		}
		res, err := s.node.Ping(r.Context(), peer, req.Count)
		out := api.PingReply{Peer: req.Peer, Results: []api.PingResult{}}
		for _, p := range res {
			out.Results = append(out.Results, api.PingResultFrom(p))
		}
		reply(w, out, err)
	})
	mux.HandleFunc("GET /v0/streams", func(w http.ResponseWriter, r *http.Request) {
		out := api.StreamList{Streams: []api.Stream{}}
		for _, st := range s.node.Streams() {
			out.Streams = append(out.Streams, api.StreamFrom(st, s.node.RTT(st.Peer)).Named(s.aliases()))
		}
		reply(w, out, nil)
	})
	mux.HandleFunc("POST /v0/streams/close", func(w http.ResponseWriter, r *http.Request) {
		var req api.StreamCloseRequest
		if !decode(w, r, &req) {
			return
		}
		switch {
		case req.All && req.ID == "":
			n, err := s.node.CloseAllStreams(r.Context())
			reply(w, api.Closed{Closed: n}, err)
		case !req.All && req.ID != "":
			id, err := strconv.ParseUint(req.ID, 10, 64)
			if err != nil {
				reply(w, nil, fmt.Errorf("%w: stream ID %q is not a number; see `p2ptun stream ls`", node.ErrUsage, req.ID))
				return
			}
			if err := s.node.CloseStream(r.Context(), id); err != nil {
				reply(w, nil, fmt.Errorf("%w; see `p2ptun stream ls`", err))
				return
			}
			reply(w, api.Closed{Closed: 1}, nil)
		default:
			reply(w, nil, fmt.Errorf("%w: give a stream ID or -a", node.ErrUsage))
		}
	})
	return mux
}

// openTunnel serves a tunnel request R: decoded, parsed once into its
// spec (its names of peers resolved), then opened by open.
func openTunnel[R interface {
	Spec(spec.Aliases) (spec.Spec, error)
}](s *Server, open func(context.Context, spec.Spec) (node.Listener, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req R
		if !decode(w, r, &req) {
			return
		}
		a := s.aliases()
		sp, err := req.Spec(a)
		if err != nil {
			reply(w, nil, err)
			return
		}
		l, err := open(r.Context(), sp)
		reply(w, api.ListenerFrom(l).Named(a), err)
	}
}

// decode reads exactly one JSON object of at most maxBody bytes, with no
// unknown fields and nothing after it.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	if err != nil {
		reply(w, nil, fmt.Errorf("%w: request body: %s", node.ErrUsage, err))
		return false
	}
	return true
}

// reply answers with v as JSON, or with err (see api.WriteError).
func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		api.WriteError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = api.WriteJSON(w, v, "")
}
