package realtime

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/scanner"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmeImports maps the package names a README snippet may use to their
// import paths: a snippet is the body of a function, and the test adds the
// imports it needs, as goimports would. Every other identifier a snippet
// uses must be declared by the snippet itself, so that it can be pasted
// into a func main as it is.
var readmeImports = map[string]string{
	"context":     "context",
	"errors":      "errors",
	"fmt":         "fmt",
	"io":          "io",
	"log":         "log",
	"net":         "net",
	"http":        "net/http",
	"url":         "net/url",
	"os":          "os",
	"signal":      "os/signal",
	"strconv":     "strconv",
	"strings":     "strings",
	"time":        "time",
	"tls":         "crypto/tls",
	"realtime":    "github.com/realtime-go/realtime",
	"client":      "github.com/realtime-go/realtime/client",
	"eventsource": "github.com/realtime-go/realtime/eventsource",
	"extensions":  "github.com/realtime-go/realtime/extensions",
	"deflate":     "github.com/realtime-go/realtime/extensions/deflate",
	"proxy":       "github.com/realtime-go/realtime/proxy",
	"websocket":   "github.com/realtime-go/realtime/websocket",
	// The broker modules are nested modules: the root's go.work lists them.
	"redisbroker": "github.com/realtime-go/realtime/redisbroker",
	"natsbroker":  "github.com/realtime-go/realtime/natsbroker",
	// So are the observers, which bring their own dependencies.
	"promobserver": "github.com/realtime-go/realtime/promobserver",
	"prometheus":   "github.com/prometheus/client_golang/prometheus",
	"promhttp":     "github.com/prometheus/client_golang/prometheus/promhttp",
}

// readmeSnippet is a ```go block of README.md.
type readmeSnippet struct {
	section string // the ## heading it is under
	line    int    // README line of its first line of code
	code    string
}

// readmeSnippets returns the Go blocks of the README at path.
func readmeSnippets(t *testing.T, path string) []readmeSnippet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		snips   []readmeSnippet
		section string
		cur     *readmeSnippet
		fence   bool // inside a block of another language
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && strings.HasPrefix(line, "```"):
			snips = append(snips, *cur)
			cur = nil
		case cur != nil:
			cur.code += line + "\n"
		case strings.HasPrefix(line, "```"):
			if !fence && strings.TrimSpace(line[3:]) == "go" {
				cur = &readmeSnippet{section: section, line: n + 1}
			} else {
				fence = !fence
			}
		case !fence && strings.HasPrefix(line, "## "):
			section = strings.TrimSpace(line[3:])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s:%d: the Go block never ends", path, cur.line-1)
	}
	return snips
}

// TestREADMESnippets builds every Go snippet of README.md as the body of
// a function of its own package, so that a snippet that does not compile
// (or that go vet faults) fails with its README line, and checks that each
// is gofmt-formatted and checks an error before using what came with it.
func TestREADMESnippets(t *testing.T) {
	readme, err := filepath.Abs("README.md")
	if err != nil {
		t.Fatal(err)
	}
	snips := readmeSnippets(t, readme)
	if len(snips) == 0 {
		t.Fatal("no Go snippets found in README.md")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building the README's snippets needs the go command: %v", err)
	}

	// A directory inside the module, so that its go.mod resolves the
	// module's packages; "_" keeps it out of ./... should it be left.
	dir, err := os.MkdirTemp(".", "_readme_snippets_")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	problems := make([][]string, len(snips))
	pkgs := make([]string, len(snips)) // "" for a snippet that does not parse
	for i, s := range snips {
		src, err := readmeProgram(readme, s)
		if err != nil {
			problems[i] = append(problems[i], err.Error())
			continue
		}
		problems[i] = append(problems[i], readmeLint(s)...)
		pkg := filepath.Join(dir, fmt.Sprintf("s%02d", i))
		if err := os.Mkdir(pkg, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkg, "snippet.go"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		pkgs[i] = "./" + filepath.ToSlash(pkg)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	run := func(args []string, pkgs []string) map[int][]string {
		if len(pkgs) == 0 {
			return nil
		}
		args = append(args, pkgs...)
		out, err := exec.CommandContext(ctx, goTool, args...).CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), ctx.Err(), out)
		}
		msgs := readmeMessages(out)
		if err != nil && len(msgs) == 0 {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		// A message about a line the README does not hold, such as an
		// import of the wrapper, would otherwise go unnoticed.
		for _, m := range goMessage.FindAll(out, -1) {
			if !readmeMessage.Match(m) {
				t.Errorf("go %s: %s", strings.Join(args, " "), m)
			}
		}
		return msgs
	}

	// -e: every compile error, not the first ten. go build goes on with
	// the other packages when one fails; vet then runs on those that
	// built, as it stops at a package's first type error.
	var parsed, compiled []string
	for _, p := range pkgs {
		if p != "" {
			parsed = append(parsed, p)
		}
	}
	built := run([]string{"build", "-gcflags=-e"}, parsed)
	for i, s := range snips {
		if pkgs[i] != "" && !slices.ContainsFunc(readmeLines(built), s.owns) {
			compiled = append(compiled, pkgs[i])
		}
	}
	vetted := run([]string{"vet"}, compiled)

	for i, s := range snips {
		errs := problems[i]
		for _, msgs := range []map[int][]string{built, vetted} {
			for _, l := range readmeLines(msgs) {
				if s.owns(l) {
					errs = append(errs, msgs[l]...)
				}
			}
		}
		if len(errs) > 0 {
			t.Errorf("README.md:%d: the snippet under %q does not build as written:\n%s", s.line, s.section, strings.Join(errs, "\n"))
		}
	}
}

// owns reports whether README line l is one of the snippet's.
func (s readmeSnippet) owns(l int) bool {
	return l >= s.line && l < s.line+strings.Count(s.code, "\n")
}

var (
	readmeMessage = regexp.MustCompile(`(?m)^(?:vet: )?\S*README\.md:(\d+)(?::\d+)?: .*$`)
	goMessage     = regexp.MustCompile(`(?m)^(?:vet: )?\S+\.(?:go|md):\d+(?::\d+)?: .*$`)
)

// readmeMessages returns the lines of the go command's output that point
// into the README, by README line.
func readmeMessages(out []byte) map[int][]string {
	msgs := map[int][]string{}
	for _, m := range readmeMessage.FindAllSubmatch(out, -1) {
		l, _ := strconv.Atoi(string(m[1]))
		msgs[l] = append(msgs[l], string(m[0]))
	}
	return msgs
}

func readmeLines(msgs map[int][]string) []int {
	var ls []int
	for l := range msgs {
		ls = append(ls, l)
	}
	slices.Sort(ls)
	return ls
}

// readmeProgram wraps s into a package whose only function has s as its
// body, importing the packages s names, with a line directive so that
// the compiler's messages name README lines.
func readmeProgram(readme string, s readmeSnippet) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", "package p\nfunc f() {\n"+s.code+"}\n", parser.AllErrors)
	if list, ok := err.(scanner.ErrorList); ok {
		var msgs []string
		for _, e := range list {
			msgs = append(msgs, fmt.Sprintf("README.md:%d: %s", s.line+e.Pos.Line-3, e.Msg))
		}
		return nil, fmt.Errorf("does not parse as the body of a function:\n%s", strings.Join(msgs, "\n"))
	}
	if err != nil {
		return nil, err
	}
	var imports []string
	for _, id := range f.Unresolved {
		if path, ok := readmeImports[id.Name]; ok && !slices.Contains(imports, path) {
			imports = append(imports, path)
		}
	}
	slices.Sort(imports)
	var b bytes.Buffer
	b.WriteString("package snippet\n\nimport (\n")
	for _, p := range imports {
		fmt.Fprintf(&b, "\t%q\n", p)
	}
	fmt.Fprintf(&b, ")\n\nfunc snippet() {\n//line %s:%d\n%s}\n", readme, s.line, s.code)
	return b.Bytes(), nil
}

// readmeLint returns, as "README.md:LINE: message", what is wrong with s although it
// compiles: code that gofmt would change, and an error result that is not
// checked before a defer uses what came with it (s, err := Dial(...)
// followed by defer s.Close() panics when Dial failed) or before it is
// assigned again.
func readmeLint(s readmeSnippet) []string {
	const head = "package p\n\nfunc f() {\n"
	src := head + s.code + "}\n"
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, 0)
	if err != nil {
		return nil // readmeProgram reports it
	}
	line := func(p token.Pos) int { return s.line + fset.Position(p).Line - 4 }

	var msgs []string
	indented := head
	for l := range strings.Lines(s.code) {
		if strings.TrimSpace(l) != "" {
			l = "\t" + l
		}
		indented += l
	}
	indented += "}\n"
	if formatted, err := format.Source([]byte(indented)); err == nil && string(formatted) != indented {
		have, want := strings.Split(indented, "\n"), strings.Split(string(formatted), "\n")
		i := 0
		for i < len(have) && i < len(want) && have[i] == want[i] {
			i++
		}
		msgs = append(msgs, fmt.Sprintf("README.md:%d: not gofmt-formatted: gofmt has %q (the snippet is indented as the body of a function)", s.line+i-3, strings.TrimPrefix(want[min(i, len(want)-1)], "\t")))
	}

	ast.Inspect(f, func(n ast.Node) bool {
		var list []ast.Stmt
		switch n := n.(type) {
		case *ast.BlockStmt:
			list = n.List
		case *ast.CaseClause:
			list = n.Body
		case *ast.CommClause:
			list = n.Body
		default:
			return true
		}
		for i, st := range list {
			as, ok := st.(*ast.AssignStmt)
			if !ok || !assigns(as, "err") {
				continue
			}
			others := map[string]bool{}
			for _, e := range as.Lhs {
				if id, ok := e.(*ast.Ident); ok && id.Name != "err" && id.Name != "_" {
					others[id.Name] = true
				}
			}
		next:
			for _, later := range list[i+1:] {
				if d, ok := later.(*ast.DeferStmt); ok && !mentions(d, "err") {
					if sel, ok := d.Call.Fun.(*ast.SelectorExpr); ok {
						if id, ok := sel.X.(*ast.Ident); ok && others[id.Name] {
							msgs = append(msgs, fmt.Sprintf("README.md:%d: defer %s.%s() before err is checked: it panics when the call failed", line(d.Pos()), id.Name, sel.Sel.Name))
						}
					}
					continue
				}
				if !mentions(later, "err") {
					continue
				}
				if a, ok := later.(*ast.AssignStmt); ok && assigns(a, "err") {
					for _, r := range a.Rhs {
						if mentions(r, "err") {
							break next
						}
					}
					msgs = append(msgs, fmt.Sprintf("README.md:%d: err assigned again before it is checked", line(a.Pos())))
				}
				break
			}
		}
		return true
	})
	return msgs
}

// assigns reports whether as assigns to a variable named name.
func assigns(as *ast.AssignStmt, name string) bool {
	return slices.ContainsFunc(as.Lhs, func(e ast.Expr) bool {
		id, ok := e.(*ast.Ident)
		return ok && id.Name == name
	})
}

// mentions reports whether n uses an identifier named name.
func mentions(n ast.Node, name string) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && id.Name == name {
			found = true
		}
		return !found
	})
	return found
}
