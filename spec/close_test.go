package spec

import (
	"errors"
	"testing"
)

func TestParseClose(t *testing.T) {
	type tun struct{ proto, listen, target string }
	web := tun{"/x/web", "/ip4/127.0.0.1/tcp/8080", "/p2p/12D3KooWpeer"}
	ssh := tun{"/x/ssh", "/p2p/12D3KooWself", "/ip4/127.0.0.1/tcp/22"}
	for _, tc := range []struct {
		name      string
		r         CloseRequest
		web, ssh  bool
		wantError bool
	}{
		{name: "all", r: CloseRequest{All: true}, web: true, ssh: true},
		{name: "protocol", r: CloseRequest{Protocol: "/x/web"}, web: true},
		{name: "listen address as host:port", r: CloseRequest{ListenAddress: "127.0.0.1:8080"}, web: true},
		{name: "target multiaddr", r: CloseRequest{TargetAddress: "/ip4/127.0.0.1/tcp/22"}, ssh: true},
		{name: "none set", r: CloseRequest{}, wantError: true},
		{name: "two set", r: CloseRequest{All: true, Protocol: "/x/web"}, wantError: true},
		{name: "bad address", r: CloseRequest{TargetAddress: "nowhere"}, wantError: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			match, err := ParseClose(tc.r)
			if tc.wantError {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ParseClose(%+v) = %v, want ErrInvalid", tc.r, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := match(web.proto, web.listen, web.target); got != tc.web {
				t.Errorf("matches %v: %v, want %v", web, got, tc.web)
			}
			if got := match(ssh.proto, ssh.listen, ssh.target); got != tc.ssh {
				t.Errorf("matches %v: %v, want %v", ssh, got, tc.ssh)
			}
		})
	}
}
