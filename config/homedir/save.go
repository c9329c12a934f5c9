package homedir

import (
	"bytes"
	"fmt"
	"github.com/pelletier/go-toml/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/p2ptun/p2ptun/config"
	"github.com/p2ptun/p2ptun/config/tomlpos"
)

// SaveAccess sets the allow and deny keys of the [access] table of the
// config file at path to a, leaving every other byte (the header as it is
// written, comments, other keys and tables) as it was; a file without an
// [access] table gets one at the end. A missing file is created from
// DefaultConfig first. The result is parsed before it replaces the file,
// atomically, so a failed save changes nothing.
func SaveAccess(path string, a config.Access) error {
	return edit(path, func(b []byte) ([]byte, error) {
		if cur, err := config.Parse(path, b); err == nil {
			a = keepNames(cur, a)
		}
		out, err := setAccess(b, a)
		if err != nil {
			return nil, fmt.Errorf("not saving access policy: %w", notTOML(path, b, err))
		}
		if _, err := config.Parse(path, out); err != nil {
			return nil, fmt.Errorf("not saving access policy: %w", err)
		}
		return out, nil
	})
}

// keepNames is a with each peer ID that the file cur lists in [access] by
// a [peers] name written as that name again: the node's policy holds peer
// IDs, and an edit at runtime (p2ptun access allow|deny) must not turn the
// names a user wrote into IDs. A peer the file did not list by name stays
// an ID.
func keepNames(cur config.Config, a config.Access) config.Access {
	aliases := cur.Aliases()
	names := map[string]string{} // peer ID → the name the file used for it
	for _, e := range slices.Concat(cur.Access.Allow, cur.Access.Deny) {
		if id, err := aliases.Peer(e); err == nil && id.String() != e {
			if _, ok := names[id.String()]; !ok {
				names[id.String()] = e
			}
		}
	}
	if len(names) == 0 {
		return a
	}
	named := func(ids []string) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = id
			if name, ok := names[id]; ok {
				out[i] = name
			}
		}
		return out
	}
	return config.Access{Allow: named(a.Allow), Deny: named(a.Deny)}
}

// AppendListen adds t as a [[listen]] table at the end of the config file
// at path (created from DefaultConfig if missing). The result is parsed
// before it replaces the file, atomically: a tunnel that would make the
// config invalid is not saved.
func AppendListen(path string, t config.ListenTunnel) error {
	return appendTable(path, "listen", t)
}

// AppendForward adds t as a [[forward]] table, like AppendListen.
func AppendForward(path string, t config.ForwardTunnel) error {
	return appendTable(path, "forward", t)
}

func appendTable(path, kind string, v any) error {
	body, err := toml.Marshal(v)
	if err != nil {
		return err
	}
	body = DoubleQuoted(body)
	return edit(path, func(b []byte) ([]byte, error) {
		doc := string(b)
		if doc != "" && !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		doc += "\n# Added by `p2ptun " + kind + " --save`.\n[[" + kind + "]]\n" + string(body)
		if _, err := config.Parse(path, []byte(doc)); err != nil {
			return nil, fmt.Errorf("not saving the tunnel: %w", err)
		}
		return []byte(doc), nil
	})
}

func tomlList(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = strconv.Quote(id)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// setAccess returns doc with the [access] table's allow and deny set to
// a. Tables and keys are found by go-toml's parser, so any header TOML
// allows ("[ access ]", "[access] # note") is recognised; a doc that is not
// TOML is an error.
func setAccess(doc []byte, a config.Access) ([]byte, error) {
	l, err := tomlpos.Scan(doc)
	if err != nil {
		return nil, err
	}
	vals := []struct{ key, val string }{{"allow", tomlList(a.Allow)}, {"deny", tomlList(a.Deny)}}
	i := l.Table("access")
	if i < 0 {
		out := string(doc)
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		out += "\n[access]\n# Managed by `p2ptun access`; deny wins over allow.\n"
		for _, v := range vals {
			out += v.key + " = " + v.val + "\n"
		}
		return []byte(out), nil
	}
	// Replace each key's "key = value" in place, or add it under the
	// header; edits go from the end so that offsets stay valid.
	type splice struct {
		start, end int
		text       string
	}
	var edits []splice
	afterHeader := len(doc)
	if nl := bytes.IndexByte(doc[l.Headers[i].Start:], '\n'); nl >= 0 {
		afterHeader = l.Headers[i].Start + nl + 1
	}
	var missing string
	for _, v := range vals {
		if k, ok := l.Key("access", v.key); ok {
			edits = append(edits, splice{k.Start, k.End, v.key + " = " + v.val})
		} else {
			missing += v.key + " = " + v.val + "\n"
		}
	}
	if missing != "" {
		if afterHeader == len(doc) && !bytes.HasSuffix(doc, []byte("\n")) {
			missing = "\n" + missing
		}
		edits = append(edits, splice{afterHeader, afterHeader, missing})
	}
	slices.SortStableFunc(edits, func(x, y splice) int { return y.start - x.start })
	out := slices.Clone(doc)
	for _, e := range edits {
		out = slices.Concat(out[:e.start], []byte(e.text), out[e.end:])
	}
	return out, nil
}

// notTOML is the error for a document that go-toml's parser rejected with
// err: Parse's, which names the line.
func notTOML(path string, doc []byte, err error) error {
	if _, perr := config.Parse(path, doc); perr != nil {
		return perr
	}
	return fmt.Errorf("%w: %s: %v", config.ErrInvalid, path, err)
}

// writeAtomic replaces path with b via a temporary file in the same
// directory.
func writeAtomic(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, mode)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
	}
	return werr
}

// DoubleQuoted returns doc, as go-toml writes it, with its literal strings
// ('...') written as basic ones ("..."), as init's config.toml and hand
// edits write them. A literal string that holds a double quote or a
// backslash stays literal: as a basic string it would need escapes. doc
// must hold no comments and no multi-line strings (go-toml writes none
// for a struct without multiline tags).
func DoubleQuoted(doc []byte) []byte {
	out := make([]byte, 0, len(doc))
	for i := 0; i < len(doc); i++ {
		switch doc[i] {
		case '"': // a basic string: copy it, escapes and all
			j := i + 1
			for j < len(doc) && doc[j] != '"' {
				if doc[j] == '\\' {
					j++
				}
				j++
			}
			out = append(out, doc[i:min(j+1, len(doc))]...)
			i = j
		case '\'':
			j := bytes.IndexByte(doc[i+1:], '\'')
			if j < 0 {
				return append(out, doc[i:]...)
			}
			lit := doc[i+1 : i+1+j]
			if bytes.ContainsAny(lit, "\"\\") {
				out = append(out, doc[i:i+j+2]...)
			} else {
				out = append(append(append(out, '"'), lit...), '"')
			}
			i += j + 1
		default:
			out = append(out, doc[i])
		}
	}
	return out
}
