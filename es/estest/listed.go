package estest

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// AllListed fails t unless listed holds exactly one value of each concrete
// type of I's package that implements I: the list a domain package declares
// of its commands (or events) once, for the codecs, fuzzers and load tools
// that take it from there. A type added to the domain but not to the list
// would otherwise be refused by every codec built from the list, and found
// only at run time. It type-checks the sources of the package in the
// current directory, which `go test` makes the directory of the package
// under test, so call it from the tests of I's own package.
func AllListed[I any](t testing.TB, listed []I) {
	t.Helper()
	iface := reflect.TypeFor[I]()
	var names []string
	for _, v := range listed {
		rt := reflect.TypeOf(v)
		if rt == nil {
			t.Errorf("the list of %s holds a nil", iface)
			continue
		}
		if rt.Kind() == reflect.Pointer {
			rt = rt.Elem()
		}
		if rt.PkgPath() != iface.PkgPath() {
			t.Errorf("the list of %s holds %s, which is not of the package %s", iface, rt, iface.PkgPath())
			continue
		}
		names = append(names, rt.Name())
	}
	missing, extra, err := unlisted(".", iface.Name(), names)
	if err != nil {
		t.Fatalf("the types of %s's package: %v", iface, err)
	}
	for _, m := range missing {
		t.Errorf("%s implements %s but is not in its list", m, iface)
	}
	for _, x := range extra {
		t.Errorf("%s is in the list of %s more than once", x, iface)
	}
}

// unlisted type-checks the Go package in dir (without its tests) and
// returns the names of the types that implement its interface ifaceName
// (by value or by pointer) but are not among listed, and the names listed
// more than once, both sorted.
func unlisted(dir, ifaceName string, listed []string) (missing, extra []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", dir, err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, nil, fmt.Errorf("parse: %w", err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("no Go files in %s", dir)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	pkg, err := conf.Check(files[0].Name.Name, fset, files, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("type-check %s: %w", dir, err)
	}
	obj, ok := pkg.Scope().Lookup(ifaceName).(*types.TypeName)
	if !ok {
		return nil, nil, fmt.Errorf("no type %s in %s", ifaceName, dir)
	}
	iface, ok := obj.Type().Underlying().(*types.Interface)
	if !ok {
		return nil, nil, fmt.Errorf("%s is not an interface", ifaceName)
	}
	for _, name := range pkg.Scope().Names() {
		tn, ok := pkg.Scope().Lookup(name).(*types.TypeName)
		if !ok || types.IsInterface(tn.Type()) {
			continue
		}
		if (types.Implements(tn.Type(), iface) || types.Implements(types.NewPointer(tn.Type()), iface)) && !slices.Contains(listed, name) {
			missing = append(missing, name)
		}
	}
	seen := map[string]bool{}
	for _, name := range listed {
		if seen[name] && !slices.Contains(extra, name) {
			extra = append(extra, name)
		}
		seen[name] = true
	}
	slices.Sort(extra)
	return missing, extra, nil
}
