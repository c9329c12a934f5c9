package measure

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// The target is the service every row's client reaches, in a process of
// its own so that its file descriptors and CPU are not the client's. The
// first byte a client sends picks what it does with the connection:
const (
	modeUpload   = 'U' // read to EOF, then write the byte count (8 bytes, big endian) and close
	modeDownload = 'D' // write until the client goes away
	modeEcho     = 'E' // write 'E' back, then echo until EOF, then close
)

// RoleEnv set to "target" makes this program (or the test binary) serve
// as the target instead of running the benchmark.
const RoleEnv = "P2PTUN_BENCH_ROLE"

// Chunk is the read and write size of the client and the target in bulk
// transfers.
const Chunk = 128 << 10

// ServeTarget listens on a free loopback port, prints its address on
// stdout and serves until stdin is closed (the parent exited).
func ServeTarget() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	go func() { io.Copy(io.Discard, os.Stdin); ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil // closed: the parent is gone
		}
		go serveConn(c.(*net.TCPConn))
	}
}

var (
	echoBufs = sync.Pool{New: func() any { return new([512]byte) }}
	bulkBufs = sync.Pool{New: func() any { return new([Chunk]byte) }}
)

func serveConn(c *net.TCPConn) {
	defer c.Close()
	var mode [1]byte
	if _, err := io.ReadFull(c, mode[:]); err != nil {
		return
	}
	switch mode[0] {
	case modeUpload:
		buf := bulkBufs.Get().(*[Chunk]byte)
		n, err := io.CopyBuffer(io.Discard, onlyReader{c}, buf[:])
		bulkBufs.Put(buf)
		if err != nil {
			return
		}
		var out [8]byte
		binary.BigEndian.PutUint64(out[:], uint64(n))
		c.Write(out[:])
	case modeDownload:
		buf := bulkBufs.Get().(*[Chunk]byte)
		defer bulkBufs.Put(buf)
		for {
			if _, err := c.Write(buf[:]); err != nil {
				return
			}
		}
	case modeEcho:
		if _, err := c.Write(mode[:]); err != nil {
			return
		}
		// Held connections sit here by the ten thousand: a small buffer.
		buf := echoBufs.Get().(*[512]byte)
		_, err := io.CopyBuffer(onlyWriter{c}, onlyReader{c}, buf[:])
		echoBufs.Put(buf)
		if err == nil {
			c.CloseWrite()
		}
	}
}

// onlyReader and onlyWriter hide ReadFrom/WriteTo so that CopyBuffer
// uses the buffer it is given (and no splice, which no row gets).
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// Target is a running target process: Addr is where it listens.
type Target struct {
	cmd   *exec.Cmd
	stdin io.Closer
	Addr  string
}

// StartTarget runs this executable again as the target; its main (or
// TestMain) must call ServeTarget when RoleEnv is "target".
func StartTarget() (*Target, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$") // the flag keeps a test binary quiet if TestMain misses the role
	cmd.Env = append(os.Environ(), RoleEnv+"=target")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t := &Target{cmd: cmd, stdin: in}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
		io.Copy(io.Discard, out)
	}()
	select {
	case t.Addr = <-line:
	case <-time.After(10 * time.Second):
	}
	if t.Addr == "" {
		t.Close()
		return nil, fmt.Errorf("the target process did not start")
	}
	return t, nil
}

// Close stops the target and waits for it.
func (t *Target) Close() {
	t.stdin.Close()
	done := make(chan struct{})
	go func() { t.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.cmd.Process.Kill()
		<-done
	}
}
