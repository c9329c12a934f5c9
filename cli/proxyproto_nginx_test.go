package cli

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2ptun/p2ptun/internal/harness"
	"github.com/p2ptun/p2ptun/internal/logbuf"
)

// nginxConf is a one-process nginx that keeps everything in dir: it
// listens on dir/nginx.sock expecting a PROXY header, answers every
// request with the client address the header gave, and logs it.
const nginxConf = `daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    log_format peers '$proxy_protocol_addr $proxy_protocol_port "$request" $status';
    server {
        listen unix:%[1]s/nginx.sock proxy_protocol;
        access_log %[1]s/access.log peers;
        location / { return 200 "$proxy_protocol_addr:$proxy_protocol_port\n"; }
    }
}
`

// startNginx runs nginx (Debian's nginx-light or nginx) as the current
// user, in one process whose files are all in a temporary directory, and
// returns the Unix socket it serves; it is stopped at cleanup. The test
// skips when nginx is not installed.
func startNginx(t *testing.T) (sock, accessLog string) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx is not installed (Debian package nginx-light): skipping the test with a real PROXY protocol consumer")
		}
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // nginx's fast shutdown
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Error("nginx did not stop on SIGTERM")
		}
	})
	sock = filepath.Join(dir, "nginx.sock")
	harness.UntilAlive(t, exited, logs, 30*time.Second, "nginx listening on "+sock, func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return sock, filepath.Join(dir, "access.log")
}

// TestProxyProtocolNginx: nginx, told by the header, logs (and answers
// with) the peer's address: the libp2p connection's, not p2ptun's Unix
// socket. nginx before 1.23.2 reads no TLV, so the peer ID is left out.
func TestProxyProtocolNginx(t *testing.T) {
	a, b := startDaemon(t), startDaemon(t)
	want := swarmAddr(t, a)
	for _, v := range []string{"v1", "v2"} {
		t.Run(v, func(t *testing.T) {
			sock, accessLog := startNginx(t)
			proto := "/x/nginx-" + v
			if _, errOut, code := b.CLI(t, "listen", proto, "/unix"+sock, "--allow", a.ID, "--proxy-protocol", v); code != 0 {
				t.Fatalf("listen: %d %s", code, errOut)
			}
			fwd := forwardTo(t, a, b.Addresses[0], proto)
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := client.Get("http://" + fwd + "/who")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || string(body) != want+"\n" {
				t.Fatalf("nginx answered %d %q, %v; want 200 %q", resp.StatusCode, body, err, want)
			}
			host, port, _ := net.SplitHostPort(want)
			line := fmt.Sprintf("%s %s \"GET /who HTTP/1.1\" 200\n", host, port)
			harness.Until(t, 30*time.Second, "nginx's access log line "+line, func() bool {
				b, _ := os.ReadFile(accessLog)
				return strings.Contains(string(b), line)
			})
		})
	}
}
