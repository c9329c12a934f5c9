package api

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// notWire are the exported struct types of package api that are no body
// of the API: a new type is either a body (a fixture in wireReplies or
// wireRequests, or a field of one) or listed here.
var notWire = map[string]bool{
	"Client":      true, // the Go client
	"Error":       true, // the client's error value; errorBody is its body
	"ReloadReply": true, // what the daemon's reload returns in-process; ReloadResult is its body
}

// TestNoNullOnTheWire: no document the API writes has a null list. Every
// body, as its fixture and as its zero value (every list nil), is written
// by WriteJSON, the one writer of replies, events and --json; and every
// exported struct type of the package is reached from those bodies (or is
// in notWire), so a new type or field is covered without touching this test.
func TestNoNullOnTheWire(t *testing.T) {
	reached := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		switch ty.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			walk(ty.Elem())
		case reflect.Struct:
			if ty.PkgPath() == reflect.TypeFor[Event]().PkgPath() {
				if reached[ty.Name()] {
					return
				}
				reached[ty.Name()] = true
			}
			for i := range ty.NumField() {
				if ty.Field(i).IsExported() {
					walk(ty.Field(i).Type)
				}
			}
		}
	}
	for _, d := range append(wireReplies(), wireRequests()...) {
		ty := reflect.TypeOf(d.v)
		walk(ty)
		for _, v := range []any{d.v, reflect.Zero(ty).Interface()} {
			var b bytes.Buffer
			if err := WriteJSON(&b, v, ""); err != nil {
				t.Fatalf("%s: %v", d.name, err)
			}
			if bytes.Contains(b.Bytes(), []byte("null")) {
				t.Errorf("%s (%T) is written with a null: %s", d.name, v, b.Bytes())
			}
		}
	}

	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || !ts.Name.IsExported() {
				return true
			}
			if _, isStruct := ts.Type.(*ast.StructType); isStruct && !reached[ts.Name.Name] && !notWire[ts.Name.Name] {
				t.Errorf("api.%s is neither a body of the API (add a fixture to wireReplies or wireRequests) nor in notWire", ts.Name.Name)
			}
			return true
		})
	}
}

// TestNoNullsLeavesItsArgument: NoNulls copies; the value a caller
// shares (a slice's array, a map) is only read.
func TestNoNullsLeavesItsArgument(t *testing.T) {
	in := ListenerList{Listeners: []Listener{{Protocol: "/x/a"}}}
	out := NoNulls(in).(ListenerList)
	if in.Listeners[0].AllowedPeers != nil || in.Listeners[0].Peers != nil {
		t.Fatalf("NoNulls changed its argument: %+v", in.Listeners[0])
	}
	if out.Listeners[0].AllowedPeers == nil || out.Listeners[0].Peers == nil {
		t.Fatalf("NoNulls left nil lists: %+v", out.Listeners[0])
	}
	if NoNulls(nil) != nil {
		t.Fatal("NoNulls(nil) is not nil")
	}
}
