package config

import (
	"bytes"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// header is a table header of a config file, found by go-toml's parser.
type header struct {
	name  string // the dotted key: "access", "listen", "a.b"
	array bool   // [[name]] rather than [name]
	line  int    // 1-based
	start int    // byte offset of the header's line
}

// keyAt is a key = value line and the table it belongs to ("" for the
// root table).
type keyAt struct {
	table, key string
	line       int
	start, end int // byte range of the whole "key = value"
}

// layout is where the tables and keys of a TOML document are.
type layout struct {
	headers []header
	keys    []keyAt
}

// scanLayout parses doc with go-toml's own parser, so that whatever TOML
// allows in a header ([ access ], [access] # note, quoted keys) is found
// where a line-based match would miss it. It fails on a document that is
// not TOML.
func scanLayout(doc []byte) (layout, error) {
	var (
		p     unstable.Parser
		out   layout
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
			out.headers = append(out.headers, header{name: name, array: e.Kind == unstable.ArrayTable, line: line, start: start})
		case unstable.KeyValue:
			name, first := dotted(e.Key())
			line, _ := lineOf(doc, first)
			out.keys = append(out.keys, keyAt{table: table, key: name, line: line,
				start: int(e.Raw.Offset), end: int(e.Raw.Offset + e.Raw.Length)})
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

// table returns the index of the [name] header (not [[name]]), or -1.
func (l layout) table(name string) int {
	for i, h := range l.headers {
		if !h.array && h.name == name {
			return i
		}
	}
	return -1
}

// arrayLines returns the lines of the [[name]] headers, in order.
func (l layout) arrayLines(name string) []int {
	var out []int
	for _, h := range l.headers {
		if h.array && h.name == name {
			out = append(out, h.line)
		}
	}
	return out
}

// key returns the key "key" of the [table] table, if it is there.
func (l layout) key(table, key string) (keyAt, bool) {
	for _, k := range l.keys {
		if k.table == table && k.key == key {
			return k, true
		}
	}
	return keyAt{}, false
}

// keyLine returns the line of key "table.key" (a key of the [table]
// table), or 0.
func (l layout) keyLine(path string) int {
	table, key, ok := strings.Cut(path, ".")
	if !ok {
		return 0
	}
	k, _ := l.key(table, key)
	return k.line
}
