package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// tableHeader matches a TOML table header line: [name] or [[name]].
var tableHeader = regexp.MustCompile(`^\s*\[`)

// SaveAccess rewrites the [access] table of the config file at path to a,
// leaving every other line (comments included) as it was. A missing file is
// created from DefaultFile first. The result is parsed before it replaces
// the file, atomically, so a failed save changes nothing.
func SaveAccess(path string, a Access) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b, err = []byte(DefaultFile), nil
	}
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	out := replaceTable(string(b), "access", formatAccess(a))
	if _, err := Parse(path, []byte(out)); err != nil {
		return fmt.Errorf("not saving access policy: %w", err)
	}
	return writeAtomic(path, []byte(out), 0o600)
}

func formatAccess(a Access) string {
	list := func(ids []string) string {
		q := make([]string, len(ids))
		for i, id := range ids {
			q[i] = strconv.Quote(id)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return fmt.Sprintf("[access]\n# Managed by `p2ptun access`; deny wins over allow.\nallow = %s\ndeny = %s\n", list(a.Allow), list(a.Deny))
}

// replaceTable replaces the table named name (its header and every line up
// to the next table header) with body, or appends body if there is none.
func replaceTable(doc, name, body string) string {
	lines := strings.SplitAfter(doc, "\n")
	start, end := -1, len(lines)
	for i, l := range lines {
		if !tableHeader.MatchString(l) {
			continue
		}
		if start >= 0 {
			end = i
			break
		}
		if strings.TrimSpace(l) == "["+name+"]" {
			start = i
		}
	}
	if start < 0 {
		if doc != "" && !strings.HasSuffix(doc, "\n") {
			doc += "\n"
		}
		return doc + "\n" + body
	}
	// Keep comments and blank lines that introduce the next table.
	for end > start+1 && isCommentOrBlank(lines[end-1]) {
		end--
	}
	tail := strings.Join(lines[end:], "")
	if tail != "" && !strings.HasPrefix(tail, "\n") {
		body += "\n"
	}
	return strings.Join(lines[:start], "") + body + tail
}

func isCommentOrBlank(l string) bool {
	t := strings.TrimSpace(l)
	return t == "" || strings.HasPrefix(t, "#")
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
