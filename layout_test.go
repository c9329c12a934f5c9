package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/p2ptun/p2ptun"

// allowedImports is DESIGN.md's package table: the one-way flow
// cli → api → node → listen/forward → streams/registry, plus the packages
// added since (access, peerlog, ticket and refusal, which import nothing of
// ours; listen and forward log repeated events through peerlog, and reset
// and read refused streams with refusal's codes),
// and node → streams for streams.Path (still downward). cli and node read
// tickets; only node makes them. bench imports nothing of ours: it
// measures the built binary.
var allowedImports = map[string][]string{
	".":                   {"cli"},
	"cli":                 {"api", "node", "config", "ticket"},
	"api":                 {"node", "refusal"},
	"node":                {"config", "listen", "forward", "registry", "streams", "access", "peerlog", "ticket", "refusal"},
	"listen":              {"streams", "registry", "peerlog", "refusal"},
	"forward":             {"streams", "registry", "peerlog", "refusal"},
	"streams":             nil,
	"registry":            nil,
	"config":              nil,
	"access":              nil,
	"peerlog":             nil,
	"ticket":              nil,
	"refusal":             nil,
	"contrib/demo/echo":   nil,
	"bench":               nil, // drives the p2ptun binary, as users run it
	"internal/logbuf":     nil,
	"internal/testnet":    nil,
	"internal/notifysock": nil,
	"internal/soak":       nil,
}

// TestImportDirections fails when a package imports one of ours that the
// design does not allow it to, or when a package is missing from the table.
func TestImportDirections(t *testing.T) {
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
				t.Errorf("package %s is not in allowedImports: add it (and to DESIGN.md's table)", pkg)
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
				t.Errorf("%s imports %s; the design allows %s to import only %v", path, dep, pkg, allowed)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range allowedImports {
		if !seen[pkg] {
			t.Errorf("allowedImports names %s, which has no Go files", pkg)
		}
	}
}
