// Package codecheck holds the project's source-size rules as a test: no production function
// over MaxLines lines or over MaxComplexity cyclomatic complexity (gocyclo, pinned in go.mod).
package codecheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/fzipp/gocyclo"
)

const (
	MaxLines      = 80
	MaxComplexity = 20
)

// debt lists functions allowed over the limits, by file:Type.Func. It is empty: keep it so.
var debt = map[string]bool{}

func TestFunctionSizeAndComplexity(t *testing.T) {
	root := filepath.Join("..", "..")
	var over []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "node_modules", ".git", "testdata", "build", "cdk.out", "tools":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		found, err := check(root, path)
		over = append(over, found...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(over)
	seen := map[string]bool{}
	for _, o := range over {
		name := strings.SplitN(o, " ", 2)[0]
		seen[name] = true
		if !debt[name] {
			t.Errorf("over the limits (%d lines, complexity %d): %s", MaxLines, MaxComplexity, o)
		}
	}
	for name := range debt {
		if !seen[name] {
			t.Errorf("%s is within the limits now: remove it from the debt list", name)
		}
	}
}

func check(root, path string) ([]string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	rel, _ := filepath.Rel(root, path)
	var out []string
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		lines := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
		cyclo := gocyclo.Complexity(fn)
		if lines > MaxLines || cyclo > MaxComplexity {
			out = append(out, fmt.Sprintf("%s:%s %d lines, complexity %d", rel, funcName(fn), lines, cyclo))
		}
	}
	return out, nil
}

func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if g, ok := t.(*ast.IndexExpr); ok {
		t = g.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}
