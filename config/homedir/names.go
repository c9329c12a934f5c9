package homedir

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/tomlpos"
	"github.com/p2ptun/p2ptun/spec"
)

// SetPeerName sets NAME = addr in the [peers] table of the config file at
// path (`p2ptun peer add`), or, with addr "", removes NAME (`p2ptun peer
// rm`; spec.ErrInvalid if there is no such name). Every other byte stays
// as it was; a file without a [peers] table gets one at the end. Like
// SaveAccess, the result is parsed before it atomically replaces the
// file, one writer at a time: a name that would make the config invalid
// is not saved.
func SetPeerName(path, name, addr string) error {
	if err := spec.CheckName(name); err != nil {
		return err
	}
	return edit(path, func(b []byte) ([]byte, error) {
		l, err := tomlpos.Scan(b)
		if err != nil {
			return nil, fmt.Errorf("not saving peer name %s: %w", name, notTOML(path, b, err))
		}
		out, err := setPeerName(b, l, name, addr)
		if err != nil {
			return nil, err
		}
		if _, err := config.Parse(path, out); err != nil {
			return nil, fmt.Errorf("not saving peer name %s: %w", name, err)
		}
		return out, nil
	})
}

// setPeerName returns doc, laid out as l, with [peers] NAME set to addr,
// or removed if addr is "".
func setPeerName(doc []byte, l tomlpos.Layout, name, addr string) ([]byte, error) {
	line := name + " = " + strconv.Quote(addr)
	if k, ok := l.Key("peers", name); ok {
		if addr != "" {
			return splice(doc, k.Start, k.End, line), nil
		}
		end := k.End
		if end < len(doc) && doc[end] == '\n' {
			end++
		}
		return splice(doc, k.Start, end, ""), nil
	}
	if addr == "" {
		return nil, fmt.Errorf("%w: no peer is named %q (see `p2ptun peer ls`)", spec.ErrInvalid, name)
	}
	i := l.Table("peers")
	if i < 0 {
		out := string(doc)
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		return []byte(out + "\n[peers]\n# Managed by `p2ptun peer`: NAME = \"/p2p/PEER-ID\" or a multiaddr ending in /p2p/PEER-ID.\n" + line + "\n"), nil
	}
	at := len(doc)
	if nl := strings.IndexByte(string(doc[l.Headers[i].Start:]), '\n'); nl >= 0 {
		at = l.Headers[i].Start + nl + 1
	} else {
		line = "\n" + line
	}
	return splice(doc, at, at, line+"\n"), nil
}

// splice returns doc with its bytes [start, end) replaced by text.
func splice(doc []byte, start, end int, text string) []byte {
	out := make([]byte, 0, len(doc)+len(text))
	out = append(out, doc[:start]...)
	out = append(out, text...)
	return append(out, doc[end:]...)
}
