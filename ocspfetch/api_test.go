package ocspfetch

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestValueTypesHaveNoHiddenFields: the structs a user fills in or reads
// carry no unexported fields (no test hooks), so `go doc` shows them whole.
func TestValueTypesHaveNoHiddenFields(t *testing.T) {
	for _, v := range []any{Options{}, Event{}, Stats{}, Staple{}} {
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			if f := rt.Field(i); !f.IsExported() {
				t.Errorf("%s has the unexported field %s", rt.Name(), f.Name)
			}
		}
	}
}

// TestNoErrorTextMatching: errors are told apart by type and sentinel,
// never by their text: no strings function in the package is handed an
// error's message (err.Error()) or an error converted to a string.
func TestNoErrorTextMatching(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "strings" {
				return true
			}
			for _, arg := range call.Args {
				if errorText(arg) {
					t.Errorf("%s: strings.%s looks at an error's text", fset.Position(call.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
}

// errorText reports whether e is x.Error() or a conversion string(x) of a
// variable (x/crypto/ocsp's ParseError is a string type).
func errorText(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok {
		return false
	}
	if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Error" && len(call.Args) == 0 {
		return true
	}
	if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "string" && len(call.Args) == 1 {
		_, isIdent := call.Args[0].(*ast.Ident)
		return isIdent
	}
	return false
}
