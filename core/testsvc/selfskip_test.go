package testsvc

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// allowedEnv are VIGIL_TEST_* variables that are switches, not services.
var allowedEnv = map[string]bool{
	"VIGIL_TEST_LOG": true,
}

// skipReason matches the messages of a test that skips because something
// outside the Go toolchain is missing.
var skipReason = regexp.MustCompile(`(?i)not (installed|set|available|running)|unavailable|needs? root|as root|services-up|env\.sh|VIGIL_TEST_`)

// selfSkips returns, for one Go file, every place where a test decides on
// its own that a service, a tool or root is missing, instead of asking
// this package (which fails such a test under VIGIL_REQUIRE_SERVICES=1).
// testCode says whether the file is test code: a _test.go file, or a
// file of a test-helper package (a folder named *test).
func selfSkips(fset *token.FileSet, f *ast.File, testCode bool) []string {
	if !testCode {
		return nil
	}
	var out []string
	report := func(n ast.Node, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s: %s", fset.Position(n.Pos()), fmt.Sprintf(format, args...)))
	}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		pkg := ""
		if id, ok := sel.X.(*ast.Ident); ok {
			pkg = id.Name
		}
		switch fn := sel.Sel.Name; {
		case pkg == "exec" && fn == "LookPath":
			report(call, "exec.LookPath: use testsvc.Tool")
		case pkg == "os" && (fn == "Geteuid" || fn == "Getuid"):
			report(call, "os.%s: use testsvc.Root", fn)
		case pkg == "os" && (fn == "Getenv" || fn == "LookupEnv") && len(call.Args) == 1:
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			name, _ := strconv.Unquote(lit.Value)
			if name == EnvRequire || strings.HasPrefix(name, "VIGIL_TEST_") && !allowedEnv[name] {
				report(call, "os.%s(%q): use testsvc.Env (or testsvc.Lookup for an optional extra)", fn, name)
			}
		case fn == "Skip" || fn == "Skipf":
			for _, a := range call.Args {
				if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING && skipReason.MatchString(lit.Value) {
					report(call, "%s(%s): a missing service, tool or root goes through testsvc", fn, lit.Value)
				}
			}
		}
		return true
	})
	return out
}

// moduleRoot is the folder holding go.mod above this package.
func moduleRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found above the test's folder")
		}
		dir = parent
	}
}

// TestNoTestSkipsOnItsOwn holds the rule that every test needing a
// service, a tool or root asks this package: only then does `make test`
// (VIGIL_REQUIRE_SERVICES=1) fail instead of passing with the test skipped.
func TestNoTestSkipsOnItsOwn(t *testing.T) {
	root := moduleRoot(t)
	self, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var found []string
	files := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor" || p == self) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		testCode := strings.HasSuffix(p, "_test.go") || strings.HasSuffix(filepath.Base(filepath.Dir(p)), "test")
		found = append(found, selfSkips(fset, f, testCode)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("only %d Go files found under %s: the walk is broken", files, root)
	}
	for _, f := range found {
		t.Error(strings.TrimPrefix(f, root+string(filepath.Separator)))
	}
}

// The check finds each kind of self-made skip in a sample file, and
// accepts the same file written with this package.
func TestSelfSkipsDetected(t *testing.T) {
	fset := token.NewFileSet()
	parse := func(name string) *ast.File {
		f, err := parser.ParseFile(fset, filepath.Join("testdata", name), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	bad := selfSkips(fset, parse("selfskip.go.txt"), true)
	for _, want := range []string{"exec.LookPath", "os.Geteuid", `"VIGIL_TEST_PG_URL"`, `"VIGIL_REQUIRE_SERVICES"`, "Skipf(\"kcat is not installed\")"} {
		if !strings.Contains(strings.Join(bad, "\n"), want) {
			t.Errorf("the check misses %s; it found:\n%s", want, strings.Join(bad, "\n"))
		}
	}
	if len(bad) != 5 {
		t.Errorf("found %d problems, want 5:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	if got := selfSkips(fset, parse("selfskip.go.txt"), false); len(got) != 0 {
		t.Errorf("non-test code flagged: %v", got)
	}
	if got := selfSkips(fset, parse("testsvc.go.txt"), true); len(got) != 0 {
		t.Errorf("the helper's way is flagged: %v", got)
	}
}
