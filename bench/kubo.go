package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/p2ptun/p2ptun/bench/procs"
	"github.com/p2ptun/p2ptun/internal/kuboconfig"
)

// kuboBin is kubo's command, looked up on PATH.
const kuboBin = "ipfs"

// kuboConfig is what the benchmark sets in a fresh kubo repository (made
// with `ipfs init --profile=test`): loopback only, nothing that reaches
// the internet, `ipfs p2p` on, and no resource manager, as the p2ptun
// daemons get limits raised for one trusted peer (procs.LimitsTOML).
var kuboConfig = slices.Concat(kuboconfig.Loopback, [][2]string{{"Swarm.ResourceMgr.Enabled", `false`}})

// kuboRow is kubo's `ipfs p2p` between two kubo daemons, when kubo is on
// PATH.
func kuboRow() row {
	r := row{Key: "kubo", Name: "kubo ipfs p2p", Color: "#b07aa1", start: startKubo,
		// iperf3 waits for no reply after a half-close: its upload runs.
		NoHalfClose: "kubo closes both ends at the client's half-close, so the upload's byte count never comes back"}
	if _, err := exec.LookPath(kuboBin); err != nil {
		r.Skip = "not installed"
	}
	return r
}

// startKubo starts two kubo daemons over loopback TCP: the second runs
// `ipfs p2p listen /x/bench` toward the destination, the first `ipfs p2p
// forward` from a free local port to it, as kubo's documentation shows.
func startKubo(ctx context.Context, _ config, to dest) (_ *setup, err error) {
	host, port, err := net.SplitHostPort(to.Addr)
	if err != nil {
		return nil, err
	}
	s, ks, err := daemonPair("kubo-bench-", func(repo string) (*kuboProc, error) { return startKuboDaemon(ctx, repo) })
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	fwd, lis := ks[0], ks[1]
	if _, err := lis.run(ctx, "p2p", "listen", benchProto, "/ip4/"+host+"/tcp/"+port); err != nil {
		return nil, err
	}
	if _, err := fwd.run(ctx, "swarm", "connect", lis.addr+"/p2p/"+lis.id); err != nil {
		return nil, err
	}
	local, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	if _, err := fwd.run(ctx, "p2p", "forward", benchProto, "/ip4/127.0.0.1/tcp/"+strconv.Itoa(local), "/p2p/"+lis.id); err != nil {
		return nil, err
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(local))
	return s, to.Ready(s.Addr)
}

// kuboProc is one running kubo daemon: its repository, peer ID and
// swarm address.
type kuboProc struct {
	*procs.Running
	repo, log string
	id, addr  string
}

func (k *kuboProc) LogFile() string { return k.log }

func startKuboDaemon(ctx context.Context, repo string) (*kuboProc, error) {
	k := &kuboProc{repo: repo, log: filepath.Join(repo, "daemon.log")}
	if _, err := k.run(ctx, "init", "--profile=test"); err != nil {
		return nil, err
	}
	for _, kv := range kuboConfig {
		if _, err := k.run(ctx, "config", "--json", kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(kuboBin, "daemon")
	cmd.Env = k.env()
	var err error
	// Ready once it says so; only then does `ipfs id` ask the daemon.
	k.Running, err = procs.StartReady(ctx, cmd, nil, k.log, 60*time.Second, func() error {
		if b, _ := os.ReadFile(k.log); !bytes.Contains(b, []byte("Daemon is ready")) {
			return errors.New("not ready")
		}
		out, err := k.run(ctx, "id", "--enc=json")
		if err != nil {
			return err
		}
		var id struct {
			ID        string
			Addresses []string
		}
		if err := json.Unmarshal([]byte(out), &id); err != nil {
			return err
		}
		for _, a := range id.Addresses {
			if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
				addr, _, _ := strings.Cut(a, "/p2p/")
				k.id, k.addr = id.ID, addr
				return nil
			}
		}
		return fmt.Errorf("no loopback TCP address in %q", id.Addresses)
	})
	return k, err
}

// env is the environment of kubo's commands: this process's, with the
// repository and kubo's telemetry off (its default; explicit here).
func (k *kuboProc) env() []string {
	return append(procs.ChildEnv(), "IPFS_PATH="+k.repo, "IPFS_TELEMETRY=off")
}

func (k *kuboProc) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, kuboBin, args...)
	cmd.Env = k.env()
	return procs.Output(cmd)
}
