package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/p2ptun/p2ptun/config"
)

func TestListenProxyProtocolKey(t *testing.T) {
	const table = "[[listen]]\nprotocol = \"/x/web\"\ntarget = \"127.0.0.1:80\"\nallow_all = true\nproxy_protocol = %q\n"
	c, err := config.Parse("config.toml", []byte(strings.Replace(table, "%q", `"v2"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listen[0]
	if l.ProxyProtocol != "v2" || l.Spec.ProxyProtocol != 2 {
		t.Fatalf("proxy_protocol = %q, spec %d; want v2, 2", l.ProxyProtocol, l.Spec.ProxyProtocol)
	}
	// --save writes it back.
	if got := config.ListenTable(l.Request()); got.ProxyProtocol != "v2" {
		t.Fatalf("ListenTable dropped proxy_protocol: %+v", got)
	}

	// A bad value is refused at its table's line, with spec's reason.
	_, err = config.Parse("config.toml", []byte("\n"+strings.Replace(table, "%q", `"v3"`, 1)))
	want := `config.toml:2: listen[1] (listen /x/web): PROXY protocol "v3": use v1 (addresses only) or v2 (addresses and the peer ID)`
	if !errors.Is(err, config.ErrInvalid) || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("Parse = %v, want config.ErrInvalid ending %q", err, want)
	}
}
