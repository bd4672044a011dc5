// Package examples_test checks what the examples may import: only the
// runtime's public packages, never the catalog's (internal/). An example
// that needed internal/ would prove nothing about the library.
package examples_test

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// modulePath reads the module's path from the go.mod above this directory.
func modulePath(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "module "); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatal("no module line in go.mod")
	return ""
}

// internalImports returns "file: import" for every import of a package
// under module's internal/ directory by a Go file under dir (test files
// and testdata included), and how many Go files it read.
func internalImports(dir, module string) (found []string, files int, err error) {
	internal := module + "/internal"
	fset := token.NewFileSet()
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		files++
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return fmt.Errorf("parse: %w", err)
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: import %s: %w", path, imp.Path.Value, err)
			}
			if p == internal || strings.HasPrefix(p, internal+"/") {
				found = append(found, path+": "+p)
			}
		}
		return nil
	})
	return found, files, err
}

// TestNoInternalImports fails if any Go file under examples/ imports a
// package of the catalog's internal/ directory.
func TestNoInternalImports(t *testing.T) {
	found, files, err := internalImports(".", modulePath(t))
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("read only %d Go files under examples/: is the walk looking in the right place?", files)
	}
	for _, f := range found {
		t.Errorf("%s: the examples use only the public packages", f)
	}
}

// TestInternalImportsFound proves the check above can fail: a file that
// imports the catalog's domain is reported, one that imports the runtime
// is not.
func TestInternalImportsFound(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good/good.go", "package good\n\nimport _ \"example.com/m/eskafka\"\n")
	write("bad/bad_test.go", "package bad\n\nimport (\n\t\"fmt\"\n\t_ \"example.com/m/internal/domain/author\"\n)\n\nvar _ = fmt.Sprint\n")
	write("bad/root.go", "package bad\n\nimport _ \"example.com/m/internal\"\n")
	write("bad/lookalike.go", "package bad\n\nimport _ \"example.com/m/internals\"\n")
	found, files, err := internalImports(dir, "example.com/m")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(found)
	if files != 4 || len(found) != 2 || !strings.HasSuffix(found[0], "bad_test.go: example.com/m/internal/domain/author") || !strings.HasSuffix(found[1], "root.go: example.com/m/internal") {
		t.Fatalf("read %d files, found %q", files, found)
	}
}

// TestNoInternalDependencies fails if anything the examples build on,
// directly or through the runtime's packages (tests included), is a
// package of the catalog's internal/ directory: the runtime must not lean
// on the catalog either.
func TestNoInternalDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies with")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-test", "-f", "{{.ImportPath}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	module := modulePath(t)
	internal := module + "/internal"
	runtime := false
	for line := range strings.Lines(string(out)) {
		p := strings.TrimSpace(line)
		runtime = runtime || p == module+"/eskafka"
		if p == internal || strings.HasPrefix(p, internal+"/") {
			t.Errorf("the examples depend on %s", p)
		}
	}
	if !runtime {
		t.Fatalf("go list did not list %s/eskafka among the examples' dependencies:\n%s", module, out)
	}
}
