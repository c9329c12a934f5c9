package tomlpos_test

import (
	"slices"
	"testing"

	"github.com/p2ptun/p2ptun/config/tomlpos"
)

const doc = `top = 1
[ access ] # note
allow = ["a"]
"deny" = []

[[listen]]
protocol = "/x/a"
[[listen]]
protocol = "/x/b"
[a.b]
c.d = 2
`

func TestScan(t *testing.T) {
	l, err := tomlpos.Scan([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if i := l.Table("access"); i < 0 || l.Headers[i].Line != 2 || doc[l.Headers[i].Start:l.Headers[i].Start+3] != "[ a" {
		t.Errorf("Table(access) = %d (%+v), want the header on line 2", i, l.Headers)
	}
	if i := l.Table("listen"); i != -1 {
		t.Errorf("Table(listen) = %d, want -1: [[listen]] is an array of tables", i)
	}
	if got := l.ArrayLines("listen"); !slices.Equal(got, []int{6, 8}) {
		t.Errorf("ArrayLines(listen) = %v, want [6 8]", got)
	}
	for _, tc := range []struct {
		table, key, text string
		line             int
	}{
		{"", "top", "top = 1", 1},
		{"access", "allow", `allow = ["a"]`, 3},
		{"access", "deny", `"deny" = []`, 4},
		{"a.b", "c.d", "c.d = 2", 11},
	} {
		t.Run(tc.table+"."+tc.key, func(t *testing.T) {
			k, ok := l.Key(tc.table, tc.key)
			if !ok || k.Line != tc.line || doc[k.Start:k.End] != tc.text {
				t.Fatalf("Key = %+v, %v; want %q on line %d", k, ok, tc.text, tc.line)
			}
		})
	}
	if _, ok := l.Key("access", "top"); ok {
		t.Error("Key(access, top) found a key of another table")
	}
	if got := l.KeyLine("access.deny"); got != 4 {
		t.Errorf("KeyLine(access.deny) = %d, want 4", got)
	}
	if got := l.KeyLine("nodot"); got != 0 {
		t.Errorf("KeyLine(nodot) = %d, want 0", got)
	}
}

func TestScanRefusesWhatIsNotTOML(t *testing.T) {
	for _, in := range []string{"[access\n", "a = \n", "= 1\n"} {
		if _, err := tomlpos.Scan([]byte(in)); err == nil {
			t.Errorf("Scan(%q) = nil error, want the parser's", in)
		}
	}
}
