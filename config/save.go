package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// SaveAccess sets the allow and deny keys of the [access] table of the
// config file at path to a, leaving every other byte (the header as it is
// written, comments, other keys and tables) as it was; a file without an
// [access] table gets one at the end. A missing file is created from
// DefaultFile first. The result is parsed before it replaces the file,
// atomically, so a failed save changes nothing.
func SaveAccess(path string, a Access) error {
	return edit(path, func(b []byte) ([]byte, error) {
		out, err := setAccess(b, a)
		if err != nil {
			return nil, fmt.Errorf("not saving access policy: %w", notTOML(path, b, err))
		}
		if _, err := Parse(path, out); err != nil {
			return nil, fmt.Errorf("not saving access policy: %w", err)
		}
		return out, nil
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
func setAccess(doc []byte, a Access) ([]byte, error) {
	l, err := scanLayout(doc)
	if err != nil {
		return nil, err
	}
	vals := []struct{ key, val string }{{"allow", tomlList(a.Allow)}, {"deny", tomlList(a.Deny)}}
	i := l.table("access")
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
	if nl := bytes.IndexByte(doc[l.headers[i].start:], '\n'); nl >= 0 {
		afterHeader = l.headers[i].start + nl + 1
	}
	var missing string
	for _, v := range vals {
		if k, ok := l.key("access", v.key); ok {
			edits = append(edits, splice{k.start, k.end, v.key + " = " + v.val})
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
	if _, perr := Parse(path, doc); perr != nil {
		return perr
	}
	return fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
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
