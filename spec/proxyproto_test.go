package spec

import "testing"

func TestParseListenProxyProtocol(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      string
		report  bool
		want    byte
		wantErr string // a substring of the reason; "" for success
	}{
		{name: "none", in: "", want: 0},
		{name: "v1", in: "v1", want: 1},
		{name: "v2", in: "v2", want: 2},
		{name: "bare number", in: "2", wantErr: `PROXY protocol "2": use v1 (addresses only) or v2`},
		{name: "upper case", in: "V2", wantErr: `PROXY protocol "V2": use v1`},
		{name: "v3", in: "v3", wantErr: `PROXY protocol "v3"`},
		{name: "with report-peer-id", in: "v2", report: true, wantErr: "both go to the target first: choose one"},
		{name: "report-peer-id alone", in: "", report: true, want: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseListen(Request{Protocol: "/x/web", Target: "127.0.0.1:80", AllowAll: true, ProxyProtocol: tt.in, ReportPeerID: tt.report})
			if tt.wantErr != "" {
				checkReason(t, err, tt.wantErr)
				return
			}
			if err != nil || s.ProxyProtocol != tt.want || s.Request.ProxyProtocol != tt.in {
				t.Fatalf("ParseListen = %d (request %q), %v; want %d", s.ProxyProtocol, s.Request.ProxyProtocol, err, tt.want)
			}
		})
	}
}
