package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSSHD speaks the first step of SSH: it sends its version line, reads
// the client's, hands it to got, and closes once the client does.
func fakeSSHD(t *testing.T) (addr string, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "SSH-2.0-p2ptun_fake_sshd\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		ch <- line
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String(), ch
}

// TestPipeAsSSHProxyCommand runs the real ssh client with `p2ptun pipe`
// (a built binary) as its ProxyCommand, against a fake sshd that only
// exchanges version lines: each side must get the other's. No sshd is
// needed; ssh must be on PATH.
func TestPipeAsSSHProxyCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the p2ptun binary; skipped with -short")
	}
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("ssh is not on PATH; skipping the ProxyCommand test")
	}
	goPath, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH to build the binary; skipping the ProxyCommand test")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "p2ptun")
	if out, err := exec.Command(goPath, "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	a, b := startDaemon(t), startDaemon(t)
	target, got := fakeSSHD(t)
	if _, errOut, code := b.CLI(t, "listen", "/x/ssh", target, "--allow", a.ID); code != 0 {
		t.Fatalf("listen: %s", errOut)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	proxy := bin + " --home " + a.Home + " pipe " + b.Addresses[0] + " /x/ssh"
	cmd := exec.CommandContext(ctx, sshPath, "-v", "-F", "/dev/null",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "ProxyCommand="+proxy, "nobody@p2ptun-peer", "true")
	cmd.Env = append(os.Environ(), "HOME="+dir, "P2PTUN_NO_MDNS=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run() // ssh fails: the fake sshd stops after the version lines
	if ctx.Err() != nil {
		t.Fatalf("ssh did not end by itself (does pipe pass the end of file on to its stdout?):\n%s", stderr.String())
	}

	if !strings.Contains(stderr.String(), "remote software version p2ptun_fake_sshd") {
		t.Errorf("ssh did not get the server's version line through the pipe:\n%s", stderr.String())
	}
	select {
	case line := <-got:
		if !strings.HasPrefix(line, "SSH-2.0-") {
			t.Errorf("fake sshd got %q from ssh, want its version line", line)
		}
	default:
		t.Errorf("fake sshd got nothing from ssh; ssh said:\n%s", stderr.String())
	}
	// ssh is gone, and so is the pipe's stream.
	waitUntil(t, "the pipe's stream to end", func() bool {
		out, _, code := a.CLI(t, "stream", "ls")
		return code == 0 && out == ""
	})
}
