//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/logbuf"
)

// The NAT lab's "internet" is a bridge in the pub namespace joining the
// relay and the WAN ports of two NAT routers. go-multiaddr counts the
// TEST-NET ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) as
// unroutable and go-libp2p hole-punches only with public addresses, so the
// lab uses 11.77.0.0/24, which go-multiaddr counts as public. The lab's
// namespaces have no link to the host's network: these addresses never
// leave them.
const (
	natRelayIP = "11.77.0.1"
	natPort    = "4141"
)

// natRoles are the lab's namespaces: the public network, two NAT routers
// and a host behind each.
var natRoles = []string{"pub", "natA", "natB", "a", "b"}

// natRouters describes the two private networks: each router's WAN
// address, and its LAN with one host behind it.
var natRouters = []struct {
	router, host        string // namespace roles
	wan, lanNet, hostIP string
}{
	{"natA", "a", "11.77.0.2", "10.77.1", "10.77.1.2"},
	{"natB", "b", "11.77.0.3", "10.77.2", "10.77.2.2"},
}

// natRules makes a router a home NAT: masquerade what leaves by the WAN
// port, and drop unsolicited packets arriving on it. Dropping (rather
// than answering with a RST or ICMP error) also means that a hole-punch
// packet arriving before the local host's own has left creates no
// conntrack entry that would make the NAT pick another port.
const natRules = `
table ip nat {
	chain post {
		type nat hook postrouting priority 100; policy accept;
		oifname "wan" masquerade
	}
}
table ip filter {
	chain input {
		type filter hook input priority 0; policy accept;
		iifname "wan" ct state new drop
	}
	chain forward {
		type filter hook forward priority 0; policy accept;
		iifname "wan" ct state new drop
	}
}
`

// natHolePunchReady is what go-libp2p's hole-punching service logs (at
// debug level, enabled by GOLOG_LOG_LEVEL) once it has started.
const natHolePunchReady = "Host now has a public address"

// natHelperEnv selects a helper mode when the test binary re-executes
// itself inside a namespace (see TestNATHelperProcess).
const natHelperEnv = "P2PTUN_NATTEST_HELPER"

// TestNATRelayAndHolePunch builds two private networks behind nftables
// NAT routers and a "public" network with a relay, all in network
// namespaces of its own, then checks that a tunnel from a host behind one
// NAT to a service behind the other comes up through the relay and, when
// the NATs allow it, upgrades to a direct, hole-punched path.
//
//	a 10.77.1.2 ─ natA 10.77.1.1 | 11.77.0.2 ─┐
//	                                          br0 ─ relay 11.77.0.1 (pub)
//	b 10.77.2.2 ─ natB 10.77.2.1 | 11.77.0.3 ─┘
func TestNATRelayAndHolePunch(t *testing.T) {
	ns := natLab(t)
	bin := harness.Binary(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	t.Cleanup(cancel)
	var procs []*natProc
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("%s log:\n%s", p.name, p.logs)
			}
		}
	})

	// The wiring: each host reaches the public network, which sees it as
	// its router's WAN address.
	whoFile := filepath.Join(t.TempDir(), "whoami.addr")
	who := natStart(t, ctx, ns["pub"], "whoami", natHelper("whoami", "0.0.0.0:0", whoFile, ""), self, "-test.run=^TestNATHelperProcess$")
	whoAddr := net.JoinHostPort(natRelayIP, natPortOf(t, natWaitAddrFile(t, whoFile, who)))
	for _, r := range natRouters {
		out, err := natClientOnce(ctx, ns[r.host], whoAddr, "", self)
		if host, _, _ := net.SplitHostPort(strings.TrimSpace(out)); err != nil || host != r.wan {
			t.Fatalf("host %s sees the public network as %q (%v), want it masqueraded as %s", r.host, out, err, r.wan)
		}
	}
	who.stop()

	logEnv := []string{"GOLOG_LOG_LEVEL=error,p2p-holepunch=debug", "GOLOG_LOG_ADD_SOURCE=false"}
	listen := []string{"--listen-addr", "/ip4/0.0.0.0/tcp/" + natPort, "--listen-addr", "/ip4/0.0.0.0/udp/" + natPort + "/quic-v1"}
	relay := natStartDaemon(t, ctx, ns["pub"], bin, logEnv, append([]string{"relay", "--allow-all"}, listen...)...)
	procs = append(procs, relay.natProc)
	relayID := relay.waitReady(t).ID
	relayFlag := []string{"--relay", "/ip4/" + natRelayIP + "/tcp/" + natPort + "/p2p/" + relayID, "--reachability", "private"}
	b := natStartDaemon(t, ctx, ns["b"], bin, logEnv, append(append([]string{"daemon"}, relayFlag...), listen...)...)
	a := natStartDaemon(t, ctx, ns["a"], bin, logEnv, append(append([]string{"daemon"}, relayFlag...), listen...)...)
	procs = append(procs, b.natProc, a.natProc)
	b.waitReady(t)
	aID := a.waitReady(t).ID
	start := time.Now()
	bCircuit := natCircuitAddr(t, b)
	natCircuitAddr(t, a)
	t.Logf("both peers hold a relay reservation after %v", time.Since(start).Round(time.Millisecond))
	// go-libp2p's hole-punching service starts only once its host has a
	// public address (it checks with a backoff of up to 5s), and it
	// punches only relayed connections that arrive after it started: one
	// that arrives earlier stays relayed. So wait for both services.
	// That state is go-libp2p's own, which no event of p2ptun's reports:
	// its debug log line is the only sign of it.
	for _, d := range []*natDaemon{a, b} {
		natWait(t, d.natProc, "go-libp2p's hole-punching service to start (it needs a public address), or the path cannot upgrade", 15*time.Second, func() bool {
			return strings.Contains(d.logs.String(), natHolePunchReady)
		})
	}
	t.Logf("hole-punching services ready %v after the daemons were", time.Since(start).Round(time.Millisecond))

	// Nor can a reach b's private address (b's daemon listens there).
	if out, err := natClientOnce(ctx, ns["a"], net.JoinHostPort(natRouters[1].hostIP, natPort), "", self); err == nil || !strings.Contains(err.Error(), "dial tcp") {
		t.Fatalf("a dialing b's private address: %q, %v; want a dial error: the NATs must separate them", out, err)
	}

	echoFile := filepath.Join(t.TempDir(), "echo.addr")
	echo := natStart(t, ctx, ns["b"], "echo", natHelper("echo", "127.0.0.1:0", echoFile, ""), self, "-test.run=^TestNATHelperProcess$")
	procs = append(procs, echo)
	echoAddr := natWaitAddrFile(t, echoFile, echo)
	if out, errOut, code := harness.Run(t, "--home", b.home, "listen", "/x/echo", echoAddr, "--allow", aID); code != 0 {
		t.Fatalf("listen on b exited %d: %s%s", code, out, errOut)
	}
	// b, the DCUtR initiator, reports how each hole punch ended.
	bEvents := harness.Attach(b.home, b.logs, b.exited).Events(t)
	// --lazy: the tunnel's first connection both opens the relayed
	// connection and its stream, so the stream is on the relayed connection
	// before hole punching (which that connection starts) can finish.
	out, errOut, code := harness.Run(t, "--home", a.home, "forward", "--lazy", "/x/echo", "127.0.0.1:0", bCircuit)
	if code != 0 {
		t.Fatalf("forward on a exited %d: %s%s", code, out, errOut)
	}
	fwdAddr := harness.HostPort(t, strings.TrimSpace(out))

	start = time.Now()
	relayed := natClient(t, ctx, ns["a"], fwdAddr, "through the relay", self)
	t.Logf("tunnel through the relay echoed after %v", time.Since(start).Round(time.Millisecond))
	if got := natEchoPaths(t, a.home); len(got) != 1 || got[0] != "relayed via "+relayID {
		t.Fatalf("a's tunnel streams have paths %q, want one relayed via %s", got, relayID)
	}

	// These NATs (masquerade, endpoint-independent mapping) allow a hole
	// punch, and it succeeds here every time: no direct connection is a
	// regression, e.g. hole punching switched off. go-libp2p makes up to
	// three attempts; each ends in an event.
	for attempt := 1; ; attempt++ {
		ev := harness.NextEvent(t, bEvents, 30*time.Second, "b's hole_punch event for a", func(ev harness.Event) bool {
			return ev.Type == "hole_punch" && ev.Peer == aID
		})
		if ev.Reason == "direct" {
			t.Logf("b hole-punched a direct connection to a on attempt %d, %v after the relayed connection opened", attempt, time.Since(start).Round(time.Millisecond))
			break
		}
		if attempt == 3 {
			t.Fatalf("b's hole punches to a all failed, the last with %q:\nb (DCUtR initiator):\n%s\na:\n%s",
				ev.Error, natHolePunchLines(b.logs.String()), natHolePunchLines(a.logs.String()))
		}
	}
	natWait(t, a.natProc, "ping from a to b to take the direct path", 30*time.Second, func() bool {
		return natPingPath(t, a.home, bCircuit) == "direct"
	})

	direct := natClient(t, ctx, ns["a"], fwdAddr, "hole punched", self)
	want := []string{"relayed via " + relayID, "direct"}
	if got := natEchoPaths(t, a.home); !slices.Equal(got, want) {
		t.Errorf("a's tunnel streams have paths %q, want %q: the old stream stays relayed, a new one goes direct", got, want)
	}
	direct.release(t)
	relayed.release(t)
}

// natLab creates the lab's namespaces, wires them and returns their names
// by role. It skips the test where namespaces cannot be made. Cleanup
// kills whatever still runs in them and deletes them.
func natLab(t *testing.T) map[string]string {
	t.Helper()
	natRequire(t, "for the NAT routers")
	ns := natNamespaces(t, natRoles...)

	pub := ns["pub"]
	natCmd(t, "", "ip", "-n", pub, "link", "add", "br0", "type", "bridge")
	natCmd(t, "", "ip", "-n", pub, "addr", "add", natRelayIP+"/24", "dev", "br0")
	natCmd(t, "", "ip", "-n", pub, "link", "set", "br0", "up")
	for _, r := range natRouters {
		router, host, port := ns[r.router], ns[r.host], "wan"+r.host
		// Each veth is created inside the namespaces, never in the host's.
		natCmd(t, "", "ip", "-n", router, "link", "add", "wan", "type", "veth", "peer", "name", port, "netns", pub)
		natCmd(t, "", "ip", "-n", pub, "link", "set", port, "master", "br0", "up")
		natCmd(t, "", "ip", "-n", router, "addr", "add", r.wan+"/24", "dev", "wan")
		natCmd(t, "", "ip", "-n", router, "link", "set", "wan", "up")
		natCmd(t, "", "ip", "-n", router, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", host)
		natCmd(t, "", "ip", "-n", router, "addr", "add", r.lanNet+".1/24", "dev", "lan")
		natCmd(t, "", "ip", "-n", router, "link", "set", "lan", "up")
		natCmd(t, "", "ip", "-n", host, "addr", "add", r.hostIP+"/24", "dev", "eth0")
		natCmd(t, "", "ip", "-n", host, "link", "set", "eth0", "up")
		natCmd(t, "", "ip", "-n", host, "route", "add", "default", "via", r.lanNet+".1")
		// /proc/sys/net belongs to the writer's namespace.
		natCmd(t, "", "ip", "netns", "exec", router, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
		natCmd(t, natRules, "ip", "netns", "exec", router, "nft", "-f", "-")
	}
	return ns
}

// natRequire skips the test unless it can build network namespaces: it
// must run as root and have ip (iproute2), and nft (nftables) too when
// nftFor says what for.
func natRequire(t *testing.T, nftFor string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: creating network namespaces needs root (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: needs ip from iproute2 to create network namespaces (apt-get install -y iproute2)")
	}
	if _, err := exec.LookPath("nft"); nftFor != "" && err != nil {
		t.Skipf("skipping: needs nft %s: install nftables (apt-get install -y nftables)", nftFor)
	}
}

// natNamespaces creates an empty network namespace (loopback up) for
// each role and returns their names by role: p2pt-PID-ROLE, so that
// natSweep can tell those of a dead test binary. It skips the test where
// namespaces are not permitted. Cleanup kills whatever still runs in them
// and deletes them.
func natNamespaces(t *testing.T, roles ...string) map[string]string {
	t.Helper()
	natSweep(t)
	ns := make(map[string]string)
	for i, role := range roles {
		name := fmt.Sprintf("p2pt-%d-%s", os.Getpid(), role)
		out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
		if err != nil {
			if i == 0 && !bytes.Contains(out, []byte("exists")) {
				t.Skipf("skipping: network namespaces are not permitted here: ip netns add: %v: %s", err, bytes.TrimSpace(out))
			}
			t.Fatalf("ip netns add %s: %v: %s", name, err, out)
		}
		t.Cleanup(func() { natRemoveNS(t, name) })
		ns[role] = name
		natCmd(t, "", "ip", "-n", name, "link", "set", "lo", "up")
	}
	return ns
}

// natSweep deletes the namespaces that an earlier run of this test left
// behind when it died before its cleanup ran (a test binary timeout): those
// named by natNamespaces for a process that no longer exists.
func natSweep(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for l := range strings.Lines(string(out)) {
		name, _, _ := strings.Cut(strings.TrimSpace(l), " ")
		owner, role, ok := strings.Cut(strings.TrimPrefix(name, "p2pt-"), "-")
		pid, err := strconv.Atoi(owner)
		if !strings.HasPrefix(name, "p2pt-") || !ok || err != nil || role == "" {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			t.Logf("deleting namespace %s left by an earlier run", name)
			natRemoveNS(t, name)
		}
	}
}

// natRemoveNS kills every process left in namespace name and deletes it.
func natRemoveNS(t *testing.T, name string) {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			t.Logf("killing process %d left in namespace %s", pid, name)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		t.Errorf("ip netns del %s: %v: %s", name, err, out)
	}
}

// natCmd runs a lab setup command with stdin and fails the test if it fails.
func natCmd(t *testing.T, stdin string, argv ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

// natProc is a process running in a namespace until the test ends.
type natProc struct {
	name   string
	cmd    *exec.Cmd
	logs   *logbuf.Buffer
	exited chan struct{} // closed once Wait returned; then err is set
	err    error
	once   sync.Once
}

// natStart starts argv in namespace ns with the environment env; cleanup
// stops it.
func natStart(t *testing.T, ctx context.Context, ns, name string, env []string, argv ...string) *natProc {
	t.Helper()
	p := &natProc{name: name, logs: &logbuf.Buffer{}, exited: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.WaitDelay = 5 * time.Second
	// If the test binary dies without cleaning up, the kernel kills the
	// process (`ip netns exec` execs it, keeping this setting).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.stop)
	return p
}

// stop asks the process to exit, kills it if it has not within 5s, and
// waits for it. `ip netns exec` execs the program, so the signal reaches
// it directly.
func (p *natProc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// natDaemon is a p2ptun daemon or relay in a lab namespace.
type natDaemon struct {
	*natProc
	home, ready string
}

// natStartDaemon runs `p2ptun --home HOME ARGS... --ephemeral --ready-file
// F --log-level debug` in namespace ns.
func natStartDaemon(t *testing.T, ctx context.Context, ns, bin string, extraEnv []string, args ...string) *natDaemon {
	t.Helper()
	return natStartDaemonWith(t, ctx, ns, bin, "", extraEnv, args...)
}

// natStartDaemonWith is natStartDaemon with cfg as HOME/config.toml if it
// is not empty. Then the daemon runs without --ephemeral, which would
// ignore the file, and makes its identity in the throwaway HOME as it
// starts.
func natStartDaemonWith(t *testing.T, ctx context.Context, ns, bin, cfg string, extraEnv []string, args ...string) *natDaemon {
	t.Helper()
	home := harness.TempHome(t)
	d := &natDaemon{home: home, ready: filepath.Join(filepath.Dir(home), "ready.json")}
	argv := append([]string{bin, "--home", home}, args...)
	if cfg == "" {
		argv = append(argv, "--ephemeral")
	} else {
		harness.WriteConfig(t, home, cfg)
	}
	argv = append(argv, "--ready-file", d.ready, "--log-level", "debug")
	d.natProc = natStart(t, ctx, ns, args[0]+" in "+ns, append(harness.Env(), extraEnv...), argv...)
	return d
}

// waitReady waits up to 20s for the daemon's ready file.
func (d *natDaemon) waitReady(t *testing.T) harness.Ready {
	t.Helper()
	return harness.WaitReady(t, d.ready, d.exited, d.logs, 20*time.Second)
}

// natWait polls cond until it holds, failing the test after d or as soon
// as p exits.
func natWait(t *testing.T, p *natProc, what string, d time.Duration, cond func() bool) {
	t.Helper()
	harness.UntilAlive(t, p.exited, p.logs, d, p.name+": "+what, cond)
}

// natCircuitAddr waits until the daemon advertises an address through
// the relay, and returns it.
func natCircuitAddr(t *testing.T, d *natDaemon) string {
	t.Helper()
	var addr string
	natWait(t, d.natProc, d.name+" to advertise a /p2p-circuit address", 20*time.Second, func() bool {
		out, _, _ := harness.Run(t, "--home", d.home, "id", "--json")
		var id harness.Ready
		_ = json.Unmarshal([]byte(out), &id)
		for _, a := range id.Addresses {
			if strings.Contains(a, "/p2p-circuit/") {
				addr = a
				return true
			}
		}
		return false
	})
	return addr
}

// natWaitAddrFile waits for a helper's address file and returns its content.
func natWaitAddrFile(t *testing.T, path string, p *natProc) string {
	t.Helper()
	var addr string
	natWait(t, p, p.name+" to listen", 20*time.Second, func() bool {
		b, err := os.ReadFile(path)
		addr = strings.TrimSpace(string(b))
		return err == nil && addr != ""
	})
	return addr
}

func natPortOf(t *testing.T, hostPort string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// natEchoPaths returns the paths of the daemon's live /x/echo streams,
// in the order they were opened.
func natEchoPaths(t *testing.T, home string) []string {
	t.Helper()
	return natStreamPaths(t, home, "/x/echo")
}

// natStreamPaths returns the paths of the daemon's live streams of
// protocol proto, in the order they were opened.
func natStreamPaths(t *testing.T, home, proto string) []string {
	t.Helper()
	out, errOut, code := harness.Run(t, "--home", home, "stream", "ls", "--json")
	var l struct {
		Streams []struct{ Protocol, Path string }
	}
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil {
		t.Fatalf("stream ls exited %d (%v): %s%s", code, err, out, errOut)
	}
	var paths []string
	for _, s := range l.Streams {
		if s.Protocol == proto {
			paths = append(paths, s.Path)
		}
	}
	return paths
}

// natPingPath pings peer once and returns the path the daemon reports, or
// the error.
func natPingPath(t *testing.T, home, peer string) string {
	t.Helper()
	out, errOut, code := harness.Run(t, "--home", home, "ping", "-n", "1", "--json", peer)
	var r struct{ Results []struct{ Path string } }
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || len(r.Results) != 1 {
		return fmt.Sprintf("ping exited %d: %s", code, strings.TrimSpace(errOut))
	}
	return r.Results[0].Path
}

// natHolePunchLines picks the hole-punching lines out of a daemon's log.
func natHolePunchLines(log string) string {
	var b strings.Builder
	for l := range strings.Lines(log) {
		if strings.Contains(l, "holepunch") {
			b.WriteString("  " + l)
		}
	}
	if b.Len() == 0 {
		return "  (no hole-punching log lines)\n"
	}
	return b.String()
}

// natHelper is the environment that makes the test binary a helper.
func natHelper(mode, addr, addrFile, payload string) []string {
	return append(harness.Env(),
		natHelperEnv+"="+mode,
		"P2PTUN_NATTEST_ADDR="+addr,
		"P2PTUN_NATTEST_ADDR_FILE="+addrFile,
		"P2PTUN_NATTEST_PAYLOAD="+payload)
}

// natConn is a client connection held open in a namespace.
type natConn struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan natLine // the client's output, closed when it ends
	err   *logbuf.Buffer
	once  sync.Once
}

// natLine is a line a client printed, without its newline, and when it
// was read.
type natLine struct {
	text string
	at   time.Time
}

// natStartClient runs a client helper (mode: client, hold or stream; see
// TestNATHelperProcess) in namespace ns, connecting to addr and sending
// payload. Its output lines arrive on c.lines. Cleanup releases it.
func natStartClient(t *testing.T, ctx context.Context, ns, mode, addr, payload, self string) *natConn {
	t.Helper()
	c := &natConn{err: &logbuf.Buffer{}, lines: make(chan natLine, 4)}
	c.cmd = exec.CommandContext(ctx, "ip", "netns", "exec", ns, self, "-test.run=^TestNATHelperProcess$")
	c.cmd.Env = natHelper(mode, addr, "", payload)
	c.cmd.Stderr = c.err
	c.cmd.WaitDelay = 5 * time.Second
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.release(t) })
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- natLine{sc.Text(), time.Now()}
		}
	}()
	return c
}

// natClient connects from namespace ns to addr, sends payload and checks
// that it is echoed. The connection stays open until release.
func natClient(t *testing.T, ctx context.Context, ns, addr, payload, self string) *natConn {
	t.Helper()
	c := natStartClient(t, ctx, ns, "client", addr, payload, self)
	select {
	case l := <-c.lines:
		if l.text != payload {
			c.release(t)
			t.Fatalf("client in %s sent %q to %s and got back %q; stderr: %s", ns, payload, addr, l.text, c.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("client in %s: no echo from %s after 30s; stderr: %s", ns, addr, c.err)
	}
	return c
}

// next returns the client's next output line, or fails the test if none
// comes before deadline.
func (c *natConn) next(t *testing.T, what string, deadline time.Time) natLine {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if ok {
			return l
		}
		t.Fatalf("%s: the client ended without saying how (stderr: %s)", what, c.err)
	case <-time.After(time.Until(deadline)):
		t.Fatalf("%s: the connection had neither ended nor answered by the deadline (client stderr: %q)", what, c.err)
	}
	return natLine{}
}

// release closes the client's stdin and waits for it to end cleanly: the
// client mode half-closes its connection and expects EOF; hold and stream
// exit.
func (c *natConn) release(t *testing.T) {
	c.once.Do(func() {
		c.stdin.Close()
		if err := c.cmd.Wait(); err != nil {
			t.Errorf("client: %v; stderr: %s", err, c.err)
		}
	})
}

// natClientOnce connects from namespace ns to addr, sends payload and
// half-closes (at once if payload is empty), and returns what the server
// sent: the echo of payload, or all of it.
func natClientOnce(ctx context.Context, ns, addr, payload, self string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, self, "-test.run=^TestNATHelperProcess$")
	cmd.Env = natHelper("client", addr, "", payload)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return string(out), nil
}

// TestNATHelperProcess is not a test: the namespace tests run the test
// binary as a small TCP tool inside their namespaces, selected by
// P2PTUN_NATTEST_HELPER:
//
//   - echo: listen on ADDR, write the bound address to ADDR_FILE, echo
//     each connection until EOF, then half-close.
//   - whoami: likewise, but answer each connection with the address it
//     came from.
//   - client: connect to ADDR, send PAYLOAD, print the reply (as many bytes
//     as were sent, or all of it when PAYLOAD is empty) and a newline,
//     then wait for stdin to close before half-closing and expecting EOF.
//   - hold: connect to ADDR, send PAYLOAD, print "echoed" once it is back,
//     then hold the connection, sending nothing, until it ends, and print
//     how: "end: reset", "end: eof" or "end: " and the error. It exits
//     when stdin closes.
//   - stream: like hold, but after the echo keep sending data (16 KiB
//     every 10ms), check that the same bytes come back, print "flowing"
//     after the first 256 KiB, and then how the connection ended.
func TestNATHelperProcess(*testing.T) {
	mode := os.Getenv(natHelperEnv)
	if mode == "" {
		return
	}
	if err := natHelperMain(mode, os.Getenv("P2PTUN_NATTEST_ADDR"), os.Getenv("P2PTUN_NATTEST_ADDR_FILE"), os.Getenv("P2PTUN_NATTEST_PAYLOAD")); err != nil {
		fmt.Fprintf(os.Stderr, "nat helper %s: %v\n", mode, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func natHelperMain(mode, addr, addrFile, payload string) error {
	switch mode {
	case "echo", "whoami":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		tmp := addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, addrFile); err != nil {
			return err
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			// Runs until killed: the connections need no owner.
			go func() {
				defer c.Close()
				if mode == "whoami" {
					fmt.Fprintln(c, c.RemoteAddr())
					return
				}
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	case "client":
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		tc := c.(*net.TCPConn)
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		var reply []byte
		if payload == "" {
			_ = tc.CloseWrite()
			reply, err = io.ReadAll(c)
		} else if _, err = io.WriteString(c, payload); err == nil {
			reply = make([]byte, len(payload))
			_, err = io.ReadFull(c, reply)
		}
		if err != nil {
			return err
		}
		fmt.Printf("%s\n", bytes.TrimSuffix(reply, []byte("\n")))
		_ = c.SetDeadline(time.Time{})
		_, _ = io.Copy(io.Discard, os.Stdin)
		if payload == "" {
			return nil
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.CloseWrite(); err != nil {
			return err
		}
		rest, err := io.ReadAll(c)
		if err == nil && len(rest) > 0 {
			err = fmt.Errorf("%d unexpected bytes after the echo", len(rest))
		}
		return err
	case "hold", "stream":
		return natHold(mode == "stream", addr, payload)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// natHold is the hold and stream helper modes.
func natHold(stream bool, addr, payload string) error {
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0) // the test is done with this client
	}()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	echo := make([]byte, len(payload))
	if _, err = io.WriteString(c, payload); err == nil {
		_, err = io.ReadFull(c, echo)
	}
	if err != nil {
		fmt.Printf("end: %s\n", natEnd(c, err))
		return nil
	}
	if string(echo) != payload {
		return fmt.Errorf("sent %q, got back %q", payload, echo)
	}
	_ = c.SetDeadline(time.Time{})
	fmt.Println("echoed")
	if !stream {
		n, err := c.Read(make([]byte, 1))
		if n > 0 {
			return errors.New("the server sent bytes nobody asked for")
		}
		fmt.Printf("end: %s\n", natEnd(c, err))
		return nil
	}
	// The data is a counter modulo 251, so that a lost or reordered
	// chunk shows.
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		buf := make([]byte, 16<<10)
		var sent int
		for range tick.C {
			for i := range buf {
				buf[i] = byte((sent + i) % 251)
			}
			if _, err := c.Write(buf); err != nil {
				return // the reader says how the connection ended
			}
			sent += len(buf)
		}
	}()
	buf := make([]byte, 32<<10)
	var got int
	for {
		n, err := c.Read(buf)
		for i, b := range buf[:n] {
			if b != byte((got+i)%251) {
				return fmt.Errorf("byte %d came back as %d, want %d", got+i, b, (got+i)%251)
			}
		}
		if got < 256<<10 && got+n >= 256<<10 {
			fmt.Println("flowing")
		}
		got += n
		if err != nil {
			fmt.Printf("end: %s (%d bytes echoed)\n", natEnd(c, err), got)
			return nil
		}
	}
}

// natEnd says how connection c ended, given the error that reading it
// returned: "reset", "eof" or the error. Linux reports a reset's
// ECONNRESET once, to whichever call on the socket comes first: when a
// concurrent write took it, the read returns a bare EOF. So an EOF counts
// as a reset if the kernel has closed the socket (TCP_CLOSE), which a FIN
// alone does not do: it leaves the socket in CLOSE_WAIT until we close it.
func natEnd(c net.Conn, err error) string {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, io.EOF):
		if natTCPState(c) == unix.BPF_TCP_CLOSE {
			return "reset"
		}
		return "eof"
	}
	return err.Error()
}

// natTCPState returns the kernel's state of TCP connection c (a
// unix.BPF_TCP_* constant), or 0 if it cannot say.
func natTCPState(c net.Conn) uint8 {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return 0
	}
	var info *unix.TCPInfo
	if err := rc.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil || info == nil {
		return 0
	}
	return info.State
}
