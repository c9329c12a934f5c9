//go:build linux

package link

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
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/var/run/netns"

// nsPrefix starts the name of every namespace a link creates, followed
// by the creating process's ID: p2ptun-wan-PID-N-a.
const nsPrefix = "p2ptun-wan-"

// Available says why links cannot be made here, or nil: they need root,
// /dev/net/tun and the ip command.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces and TUN devices)")
	}
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		if err := missingCaps(string(status)); err != nil {
			return err
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("needs /dev/net/tun: %w", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("needs the ip command (Debian package iproute2)")
	}
	return nil
}

// The capabilities a link needs (linux/capability.h): devices, addresses
// and sysctls; namespaces.
const (
	capNetAdmin = 12
	capSysAdmin = 21
)

// missingCaps says which of the capabilities a link needs the effective
// set in a /proc/PID/status text lacks, or nil. Root in an unprivileged
// container has neither.
func missingCaps(status string) error {
	for line := range strings.Lines(status) {
		hex, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		eff, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
		if err != nil {
			return fmt.Errorf("reading CapEff %q: %w", strings.TrimSpace(hex), err)
		}
		var missing []string
		if eff&(1<<capSysAdmin) == 0 {
			missing = append(missing, "CAP_SYS_ADMIN")
		}
		if eff&(1<<capNetAdmin) == 0 {
			missing = append(missing, "CAP_NET_ADMIN")
		}
		if len(missing) > 0 {
			return fmt.Errorf("needs %s: network namespaces and TUN devices are not permitted here (an unprivileged container?)", strings.Join(missing, " and "))
		}
		return nil
	}
	return nil // no CapEff line: ip will say what it lacks
}

// An End is one side of a link: its namespace, device and address.
type End struct {
	// NS is the network namespace's name (ip netns).
	NS string
	// Addr is the device's address there.
	Addr net.IP

	starts chan startReq // served by a thread in NS until closed is
	closed chan struct{} // closed by the link's Close
}

// A startReq asks an End's starter thread to start cmd.
type startReq struct {
	cmd  *exec.Cmd
	errc chan error
}

// ErrClosed is Start's error after the link's Close.
var ErrClosed = errors.New("link closed")

// Do runs f on a thread that is in e's namespace and returns its error.
// Sockets f opens stay in that namespace; processes f starts (os/exec
// forks from the calling thread) run in it. The thread is never used
// again: it exits when f returns.
func (e End) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the goroutine's exit ends the thread, so no
		// other goroutine runs in the namespace.
		runtime.LockOSThread()
		fd, err := unix.Open(filepath.Join(netnsDir, e.NS), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("namespace %s: %w", e.NS, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("entering namespace %s: %w", e.NS, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Start starts cmd in e's namespace; the caller waits for it as usual.
// The process is killed (SIGKILL, its parent-death signal) when the link
// closes, or when this process dies without closing it.
func (e End) Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	req := startReq{cmd, make(chan error, 1)}
	select {
	case e.starts <- req:
		return <-req.errc
	case <-e.closed:
		return ErrClosed
	}
}

// serveStarts starts processes for Start until the link closes, on one
// thread in e's namespace that lives as long as the link: a child's
// parent-death signal is sent when the thread that forked it exits.
func (e End) serveStarts() error {
	return e.Do(func() error {
		for {
			select {
			case req := <-e.starts:
				req.errc <- req.cmd.Start()
			case <-e.closed:
				return nil
			}
		}
	})
}

// Listen is net.Listen in e's namespace.
func (e End) Listen(network, addr string) (ln net.Listener, err error) {
	err = e.Do(func() error {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// ListenPacket is net.ListenPacket in e's namespace.
func (e End) ListenPacket(network, addr string) (pc net.PacketConn, err error) {
	err = e.Do(func() error {
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

// Dial is a net.Dialer's DialContext in e's namespace.
func (e End) Dial(ctx context.Context, network, addr string) (c net.Conn, err error) {
	err = e.Do(func() error {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// ip runs the ip command with args; its error carries ip's stderr.
func ip(args ...string) error {
	var stderr bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// nsSeq numbers this process's namespaces.
var nsSeq atomic.Int64

// newNSNames returns the names of a new link's two namespaces.
func newNSNames() (a, b string) {
	base := fmt.Sprintf("%s%d-%d-", nsPrefix, os.Getpid(), nsSeq.Add(1))
	return base + "a", base + "b"
}

// removeStale deletes the namespaces that links of processes no longer
// running left behind (a run that was killed).
func removeStale() {
	ents, _ := os.ReadDir(netnsDir)
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		n, err := strconv.Atoi(pid)
		if err != nil || n == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); errors.Is(err, os.ErrNotExist) {
			ip("netns", "del", e.Name())
		}
	}
}

// writeSysctl sets a sysctl of the calling thread's namespace, e.g.
// "net/ipv6/conf/all/disable_ipv6".
func writeSysctl(key, value string) error {
	return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0)
}

// setupNS configures namespace e before its device exists: loopback up,
// no IPv6 (so that the kernel sends nothing of its own through the link:
// no router or multicast listener messages), and TCP buffers that let
// one connection fill a long fat link (the namespace's defaults cap a
// receive window at 6 MiB, half of 1 Gbit/s × 100 ms), with TCP
// congestion control cc if set.
func setupNS(e End, cc string) error {
	if err := ip("-n", e.NS, "link", "set", "lo", "up"); err != nil {
		return err
	}
	sysctls := [][2]string{
		{"net/ipv6/conf/all/disable_ipv6", "1"},
		{"net/ipv6/conf/default/disable_ipv6", "1"},
		{"net/ipv4/tcp_rmem", "4096 131072 67108864"},
		{"net/ipv4/tcp_wmem", "4096 16384 67108864"},
	}
	if cc != "" {
		sysctls = append(sysctls, [2]string{"net/ipv4/tcp_congestion_control", cc})
	}
	return e.Do(func() error {
		for _, kv := range sysctls {
			err := writeSysctl(kv[0], kv[1])
			if errors.Is(err, os.ErrPermission) && kv[0] == "net/ipv4/tcp_congestion_control" {
				allowed, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
				return fmt.Errorf("%w: tcp congestion control %s: a namespace may use only net.ipv4.tcp_allowed_congestion_control (%s)",
					ErrInvalid, kv[1], strings.TrimSpace(string(allowed)))
			}
			if err != nil {
				return fmt.Errorf("namespace %s: sysctl %s: %w", e.NS, kv[0], err)
			}
		}
		return nil
	})
}

// devName is the TUN device's name in both namespaces.
const devName = "wan0"

// openTUN creates the TUN device in e's namespace and returns it,
// readable and writable through Go's poller (Close ends a blocked Read).
func openTUN(e End, mtu int) (f *os.File, err error) {
	err = e.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("opening /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(devName)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("creating TUN device %s in %s: %w", devName, e.NS, err)
		}
		f = os.NewFile(uintptr(fd), devName)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"-n", e.NS, "addr", "add", e.Addr.String() + "/24", "dev", devName},
		{"-n", e.NS, "link", "set", devName, "mtu", strconv.Itoa(mtu), "txqueuelen", "10000", "up"},
	} {
		if err := ip(args...); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// TCPCongestion is the TCP congestion control the link's namespaces use.
func (l *Link) TCPCongestion() string {
	var b []byte
	l.A.Do(func() (err error) {
		b, err = os.ReadFile("/proc/sys/net/ipv4/tcp_congestion_control")
		return err
	})
	return strings.TrimSpace(string(b))
}

// DeviceDrops is the packets the kernel dropped on their way into the
// link in direction dir (AtoB or BtoA): the sending device's queue
// overflowed because this process did not read it fast enough. Nonzero,
// it says the emulator, not the emulated link, set the pace.
func (l *Link) DeviceDrops(dir int) (int64, error) {
	e := l.A
	if dir == BtoA {
		e = l.B
	}
	out, err := exec.Command("ip", "-n", e.NS, "-j", "-s", "link", "show", "dev", devName).Output()
	if err != nil {
		return 0, fmt.Errorf("ip -n %s -s link show %s: %w", e.NS, devName, err)
	}
	var links []struct {
		Stats64 struct {
			TX struct {
				Dropped int64 `json:"dropped"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		return 0, fmt.Errorf("ip -n %s -s link show %s: %q: %v", e.NS, devName, out, err)
	}
	return links[0].Stats64.TX.Dropped, nil
}
