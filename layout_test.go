package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/p2ptun/p2ptun"

// architectureDoc holds the package table that TestImportDirections
// enforces: each row names a package (its directory, "." for the root), the
// packages of ours it may import, and what it owns.
const architectureDoc = "docs/ARCHITECTURE.md"

// allowedImports reads the package table from architectureDoc: the rows
// of the first Markdown table after the layout_test.go marker comment,
// "| `pkg` | `dep`, `dep` (or —) | owns |".
func allowedImports(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(architectureDoc)
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "<!-- layout_test.go parses this table")
	if !ok {
		t.Fatalf("%s has no package table (the layout_test.go marker comment is missing)", architectureDoc)
	}
	allowed := map[string][]string{}
	rows := 0
	for _, line := range strings.Split(table, "\n")[1:] {
		if !strings.HasPrefix(line, "|") {
			if rows > 0 {
				break
			}
			continue
		}
		rows++
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue // the header and its rule
		}
		pkg := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if _, dup := allowed[pkg]; dup {
			t.Errorf("%s names package %s twice", architectureDoc, pkg)
		}
		deps := []string{}
		for _, d := range strings.Split(cells[2], ",") {
			if d = strings.Trim(strings.TrimSpace(d), "`"); d != "" && d != "—" {
				deps = append(deps, d)
			}
		}
		allowed[pkg] = deps
	}
	if len(allowed) == 0 {
		t.Fatalf("%s: the package table has no rows", architectureDoc)
	}
	return allowed
}

// TestImportDirections fails when a package imports one of ours that the
// design does not allow it to, or when a package is missing from the table.
func TestImportDirections(t *testing.T) {
	allowedImports := allowedImports(t)
	fset := token.NewFileSet()
	seen := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		allowed, known := allowedImports[pkg]
		if !known {
			if !seen[pkg] {
				t.Errorf("package %s is not in %s's package table: add it", pkg, architectureDoc)
			}
			seen[pkg] = true
			return nil
		}
		seen[pkg] = true
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, module+"/") {
				continue
			}
			if dep := strings.TrimPrefix(p, module+"/"); !slices.Contains(allowed, dep) {
				t.Errorf("%s imports %s; %s allows %s to import only %v", path, dep, architectureDoc, pkg, allowed)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range allowedImports {
		if !seen[pkg] {
			t.Errorf("%s names package %s, which has no Go files", architectureDoc, pkg)
		}
	}
}
