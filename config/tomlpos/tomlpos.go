package tomlpos

import (
	"bytes"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Header is a table header of a TOML document.
type Header struct {
	Name  string // the dotted key: "access", "listen", "a.b"
	Array bool   // [[name]] rather than [name]
	Line  int    // 1-based
	Start int    // byte offset of the header's line
}

// Key is a key = value line and the table it belongs to ("" for the
// root table).
type Key struct {
	Table, Name string
	Line        int
	Start, End  int // byte range of the whole "key = value"
}

// Layout is where the tables and keys of a TOML document are.
type Layout struct {
	Headers []Header
	Keys    []Key
}

// Scan parses doc with go-toml's own parser, so that whatever TOML
// allows in a header ([ access ], [access] # note, quoted keys) is found
// where a line-based match would miss it. It fails on a document that is
// not TOML.
func Scan(doc []byte) (Layout, error) {
	var (
		p     unstable.Parser
		out   Layout
		table string
	)
	p.Reset(doc)
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			name, first := dotted(e.Key())
			line, start := lineOf(doc, first)
			table = name
			out.Headers = append(out.Headers, Header{Name: name, Array: e.Kind == unstable.ArrayTable, Line: line, Start: start})
		case unstable.KeyValue:
			name, first := dotted(e.Key())
			line, _ := lineOf(doc, first)
			out.Keys = append(out.Keys, Key{Table: table, Name: name, Line: line,
				Start: int(e.Raw.Offset), End: int(e.Raw.Offset + e.Raw.Length)})
		}
	}
	return out, p.Error()
}

// dotted joins the parts of a key with dots and returns the byte offset
// of its first part.
func dotted(it unstable.Iterator) (string, int) {
	var parts []string
	first := -1
	for it.Next() {
		n := it.Node()
		if first < 0 {
			first = int(n.Raw.Offset)
		}
		parts = append(parts, string(n.Data))
	}
	return strings.Join(parts, "."), max(first, 0)
}

// lineOf returns the 1-based line of offset in doc and the offset at which
// that line starts.
func lineOf(doc []byte, offset int) (line, start int) {
	before := doc[:offset]
	return bytes.Count(before, []byte("\n")) + 1, bytes.LastIndexByte(before, '\n') + 1
}

// Table returns the index in Headers of the [name] header (not
// [[name]]), or -1.
func (l Layout) Table(name string) int {
	for i, h := range l.Headers {
		if !h.Array && h.Name == name {
			return i
		}
	}
	return -1
}

// ArrayLines returns the lines of the [[name]] headers, in order.
func (l Layout) ArrayLines(name string) []int {
	var out []int
	for _, h := range l.Headers {
		if h.Array && h.Name == name {
			out = append(out, h.Line)
		}
	}
	return out
}

// Key returns the key "key" of the [table] table, if it is there.
func (l Layout) Key(table, key string) (Key, bool) {
	for _, k := range l.Keys {
		if k.Table == table && k.Name == key {
			return k, true
		}
	}
	return Key{}, false
}

// KeyLine returns the line of key "table.key" (a key of the [table]
// table), or 0.
func (l Layout) KeyLine(path string) int {
	table, key, ok := strings.Cut(path, ".")
	if !ok {
		return 0
	}
	k, _ := l.Key(table, key)
	return k.Line
}
