package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spotinit/spotinit/internal/logcheck"
	"github.com/urfave/cli/v2"
)

// The tests in this file hold the documentation a user meets to what the
// binary does: the README's reference covers every option of --help; no
// document names an option or a SPOTINIT_ variable that does not exist; the
// log samples are real records; the README's quick start runs as written;
// Dockerfile.example and the examples configure spotinit as they say.

// docFiles are the documents users read, relative to the repository root:
// the README and the other top-level notes, docs/*.md, Dockerfile.example
// and everything under examples/.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md", "CHANGELOG.md", "CONTRIBUTING.md", "SECURITY.md", "Dockerfile.example"}
	md, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, md...)
	err = filepath.WalkDir("examples", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// helpOption is one option as `spotinit --help` lists it.
type helpOption struct {
	name, env, def string // def: the "(default: ...)" text, unquoted; "" when none is shown
}

var (
	helpLine    = regexp.MustCompile(`^\s+--([a-z][a-z0-9-]*)`)
	helpEnv     = regexp.MustCompile(`\[\$(SPOTINIT_[A-Z0-9_]+)\]`)
	helpDefault = regexp.MustCompile(`\(default: ("[^"]*"|[a-z0-9]+)\)`)
)

// helpOptions runs spotinit's --help, as users see it, and reads every
// option in it.
func helpOptions(t *testing.T) []helpOption {
	t.Helper()
	app := newApp(func(*cli.Context) error { return nil })
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	if err := app.Run([]string{"spotinit", "--help"}); err != nil {
		t.Fatal(err)
	}
	var opts []helpOption
	for line := range strings.SplitSeq(out.String(), "\n") {
		m := helpLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		o := helpOption{name: m[1]}
		if e := helpEnv.FindStringSubmatch(line); e != nil {
			o.env = e[1]
		}
		if d := helpDefault.FindAllStringSubmatch(line, -1); d != nil {
			o.def = strings.Trim(d[len(d)-1][1], `"`)
		}
		opts = append(opts, o)
	}
	if len(opts) < 30 {
		t.Fatalf("read %d options from --help:\n%s", len(opts), out.String())
	}
	return opts
}

// mdRow is one row of a markdown table, its cells trimmed.
type mdRow struct {
	line  int
	cells []string
}

// tableRows returns the rows of every markdown table in text whose first
// cell starts with a code span.
func tableRows(text string) []mdRow {
	var rows []mdRow
	for i, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		// Split on | but not on \| (a pipe inside a cell).
		var cells []string
		var cell strings.Builder
		for j := 1; j < len(line); j++ {
			switch {
			case line[j] == '|' && line[j-1] != '\\':
				cells = append(cells, strings.TrimSpace(cell.String()))
				cell.Reset()
			default:
				cell.WriteByte(line[j])
			}
		}
		rows = append(rows, mdRow{line: i + 1, cells: cells})
	}
	return rows
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// spanFlags returns the options named by the code spans of a cell that
// start with --: "`--version`, `--help`" names version and help.
func spanFlags(cell string) []string {
	var names []string
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		if f := spanFlag.FindStringSubmatch(m[1]); f != nil {
			names = append(names, f[1])
		}
	}
	return names
}

// TestDocsReferenceCoversHelp: every option that `spotinit --help` lists is
// in a row of the README's option tables, with the variable --help gives it
// (and none when it has none) and the default --help shows.
func TestDocsReferenceCoversHelp(t *testing.T) {
	rows := map[string]mdRow{}
	for _, r := range tableRows(readDoc(t, "README.md")) {
		for _, name := range spanFlags(r.cells[0]) {
			rows[name] = r
		}
	}
	for _, o := range helpOptions(t) {
		r, ok := rows[o.name]
		if !ok {
			t.Errorf("--%s is in --help but in no row of the README's option tables", o.name)
			continue
		}
		if len(r.cells) < 4 {
			t.Errorf("README.md:%d: --%s: want the columns option, environment, default, meaning", r.line, o.name)
			continue
		}
		switch env := spotinitVar.FindAllString(r.cells[1], -1); {
		case o.env == "" && strings.Contains(r.cells[1], "SPOTINIT_"):
			t.Errorf("README.md:%d: --%s has no variable, the README gives it %s", r.line, o.name, r.cells[1])
		case o.env != "" && !strings.Contains(r.cells[1], "`"+o.env+"`"):
			t.Errorf("README.md:%d: --%s's variable is %s, the README says %q", r.line, o.name, o.env, r.cells[1])
		case len(env) > 1:
			t.Errorf("README.md:%d: --%s: more than one variable in %q", r.line, o.name, r.cells[1])
		}
		if o.def != "" && o.name != "version" && !strings.Contains(r.cells[2], "`"+o.def+"`") {
			t.Errorf("README.md:%d: --%s's default is %q, the README says %q", r.line, o.name, o.def, r.cells[2])
		}
	}
}

// The SPOTINIT_ variables that are neither an option's nor a hook's:
// test switches the maintainers' notes name. TestDocsNameRealOptions checks
// that each is read by the tests or the scripts, so the list cannot go
// stale.
var devSwitches = []string{
	"SPOTINIT_CI", "SPOTINIT_E2E", "SPOTINIT_HARD", "SPOTINIT_BUILDS", "SPOTINIT_AEMM_BIN",
	"SPOTINIT_REQUIRE_PIDNS", "SPOTINIT_REQUIRE_TOOLS", "SPOTINIT_REQUIRE_AEMM",
}

// notVariables are names the docs mention to say they do not exist.
var notVariables = []string{
	"SPOTINIT_CHECK", // --check has no variable, on purpose (docs/check.md)
}

var (
	spotinitVar = regexp.MustCompile(`SPOTINIT_[A-Z0-9][A-Z0-9_]*`)
	// A command that runs spotinit: the word spotinit, alone or as a path's
	// last element (./spotinit, /spotinit), not part of another name
	// (spotinit-sample, spotinit_1.2.3_amd64.deb, spotinit:1.2.3,
	// logger=spotinit, github.com/spotinit/spotinit@v1).
	spotinitWord = regexp.MustCompile(`(?:^|[\s"'\[(/])spotinit(?:$|[\s"',\])])`)
	proseFlag    = regexp.MustCompile(`(?:^|[^\w-])--([a-z][a-z0-9-]*)`)
	fence        = regexp.MustCompile("(?ms)^[ \t]*```[^\n]*\n(.*?)^[ \t]*```")
	spanFlag     = regexp.MustCompile(`^--([a-z][a-z0-9-]*)`)
)

// commandFlags returns the options given to spotinit in one line of a
// command (continuations joined): every --name after the word spotinit up
// to a bare -- (the child's argv begins) or the end of that command (|, &&,
// ;, &).
func commandFlags(line string) []string {
	var names []string
	for _, loc := range spotinitWord.FindAllStringIndex(line, -1) {
	tokens:
		for _, tok := range strings.Fields(line[loc[1]-1:]) {
			tok = strings.Trim(tok, "\"',[]().:`")
			switch {
			case tok == "--", tok == "|", tok == "||", tok == "&&", tok == "&":
				break tokens
			case strings.HasPrefix(tok, "--"):
				name, _, _ := strings.Cut(tok[2:], "=")
				names = append(names, name)
			}
			if strings.HasSuffix(tok, ";") {
				break tokens
			}
		}
	}
	return names
}

// joinContinued joins shell lines ending in a backslash with the next.
func joinContinued(text string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.SplitSeq(text, "\n") {
		if s, ok := strings.CutSuffix(strings.TrimRight(line, " "), "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

// docFlags returns every option a document names as spotinit's, with
// where: in markdown, the options of every command that runs spotinit (in
// code blocks and code spans), every code span that starts with --, and
// every --name in prose; elsewhere (Dockerfile.example, the examples), the
// options of every command line that runs spotinit. Other programs' flags
// (docker run --init, aws ... --instance-id, go build -ldflags) are left
// alone: they are never after spotinit on a command line, and in markdown
// prose they are written in a code span that starts with the program.
func docFlags(name, text string) map[string][]string {
	found := map[string][]string{}
	add := func(where string, names ...string) {
		for _, n := range names {
			found[n] = append(found[n], where)
		}
	}
	if !strings.HasSuffix(name, ".md") {
		for i, line := range joinContinued(text) {
			add(fmt.Sprintf("%s, command %d", name, i+1), commandFlags(line)...)
		}
		return found
	}
	for _, m := range fence.FindAllStringSubmatch(text, -1) {
		for _, line := range joinContinued(m[1]) {
			add(name+": code block: "+clipLine(line), commandFlags(line)...)
		}
	}
	prose := fence.ReplaceAllString(text, " ")
	prose = strings.Join(strings.Fields(prose), " ") // code spans may break across lines
	for _, m := range codeSpan.FindAllStringSubmatch(prose, -1) {
		add(name+": `"+m[1]+"`", commandFlags(m[1])...)
		add(name+": `"+m[1]+"`", spanFlags(m[0])...)
	}
	for _, m := range proseFlag.FindAllStringSubmatch(codeSpan.ReplaceAllString(prose, " "), -1) {
		add(name+": prose", m[1])
	}
	return found
}

func clipLine(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// readNames returns the SPOTINIT_ names the repository's Go code (in a
// string literal; this file aside) or its scripts (outside comments) read.
func readNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata"):
			return filepath.SkipDir
		case d.IsDir():
			return nil
		case p == "docs_test.go": // its own lists name them all
		case strings.HasSuffix(p, ".go"):
			for _, lit := range goStrings(t, p) {
				for _, n := range spotinitVar.FindAllString(lit, -1) {
					names[n] = true
				}
			}
		case strings.HasSuffix(p, ".sh") || p == "test.sh" || p == filepath.Join(".ci", "run"):
			for line := range strings.SplitSeq(readDoc(t, p), "\n") {
				if !strings.HasPrefix(strings.TrimSpace(line), "#") {
					for _, n := range spotinitVar.FindAllString(line, -1) {
						names[n] = true
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// goStrings returns the string literals of one Go file, unquoted.
func goStrings(t *testing.T, path string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil {
				out = append(out, s)
			}
		}
		return true
	})
	return out
}

// TestDocsNameRealOptions: every option and every SPOTINIT_ variable that
// the README, docs/, Dockerfile.example, the examples and the changelog
// name exists: an option of --help; an option's variable, a hook's, or a
// test switch that the code reads. It fails on a typo such as
// --kill-marign or SPOTINIT_STOP_TIMOUT anywhere.
func TestDocsNameRealOptions(t *testing.T) {
	flagSet := map[string]bool{}
	vars := map[string]bool{}
	for _, o := range helpOptions(t) {
		flagSet[o.name] = true
		if o.env != "" {
			vars[o.env] = true
		}
	}
	for _, v := range hookVariables {
		vars[v] = true
	}
	read := readNames(t)
	for _, v := range devSwitches {
		if !read[v] {
			t.Errorf("devSwitches lists %s, which no test or script reads", v)
		}
		vars[v] = true
	}
	for _, v := range notVariables {
		if vars[v] {
			t.Errorf("notVariables lists %s, which is a variable", v)
		}
		vars[v] = true
	}
	checked := 0
	for _, name := range docFiles(t) {
		text := readDoc(t, name)
		for n, where := range docFlags(name, text) {
			checked++
			if !flagSet[n] {
				t.Errorf("--%s is not an option of spotinit; named in %s", n, strings.Join(where, "; "))
			}
		}
		for i, line := range strings.Split(text, "\n") {
			for _, v := range spotinitVar.FindAllString(line, -1) {
				if !vars[v] {
					t.Errorf("%s:%d: %s is not a variable spotinit, its hooks or its tests read", name, i+1, v)
				}
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d options found in the documents: the scan is broken", checked)
	}
}

// TestDocsFlagScan is the scan's own table: what it takes for spotinit's
// options and what it leaves to other programs.
func TestDocsFlagScan(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"x.md", "Use `--kill-marign 3s` here.", []string{"kill-marign"}},
		{"x.md", "prose with --stop-timeout in it", []string{"stop-timeout"}},
		{"x.md", "```sh\n./spotinit --imds off \\\n  --check -- python3 app.py --not-ours\n```\n", []string{"imds", "check"}},
		{"x.md", "`docker run --init IMAGE`, `aws autoscaling complete-lifecycle-action --instance-id ID`", nil},
		{"x.md", "`go build -ldflags=-X -o spotinit .` and `docker build -t spotinit-sample .`", nil},
		{"x.md", "`COPY --from=spotinit:1.2.3 /spotinit /spotinit`", nil},
		{"x.md", "`docker run --rm --entrypoint /spotinit IMAGE --check -- python3 /app/app.py`", []string{"check"}},
		{"Dockerfile", `ENTRYPOINT ["/spotinit", "--simulate-notce", "--"]`, []string{"simulate-notce"}},
		{"Dockerfile", "# docker run --rm --stop-timeout 30 spotinit-sample", nil},
		{"x.md", "```\ntime=x level=INFO msg=\"m\" logger=spotinit a=--b\n```\n", nil},
		{"x.md", "`spotinit --check | grep --count problem`", []string{"check"}},
	} {
		got := docFlags(tc.name, tc.text)
		var names []string
		for n := range got {
			names = append(names, n)
		}
		slices.Sort(names)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Errorf("%s %q: found %q, want %q", tc.name, tc.text, names, want)
		}
	}
}

// loggedMessages returns every message spotinit's own code logs: the
// constant message of each slog call (Debug, Info, Warn, Error: the first
// argument; Log and NewRecord: the third) and of each note, in the
// non-test Go files of the packages the binary is built from.
func loggedMessages(t *testing.T) (msgs, literals map[string]bool) {
	t.Helper()
	msgs, literals = map[string]bool{}, map[string]bool{}
	lit := func(e ast.Expr) (string, bool) {
		if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.STRING {
			s, err := strconv.Unquote(b.Value)
			return s, err == nil
		}
		return "", false
	}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "tools", "bench", "stress", "e2e", "examples", "logcheck":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		noteMsg := func(c *ast.CompositeLit) {
			if len(c.Elts) > 1 {
				if s, ok := lit(c.Elts[1]); ok {
					msgs[s] = true
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, ok := lit(n); ok {
					literals[s] = true
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				i := -1
				switch sel.Sel.Name {
				case "Debug", "Info", "Warn", "Error":
					i = 0
				case "Log", "NewRecord":
					i = 2
				}
				if i >= 0 && len(n.Args) > i {
					if s, ok := lit(n.Args[i]); ok {
						msgs[s] = true
					}
				}
			case *ast.CompositeLit:
				switch ty := n.Type.(type) {
				case *ast.Ident:
					if ty.Name == "note" {
						noteMsg(n)
					}
				case *ast.ArrayType:
					if id, ok := ty.Elt.(*ast.Ident); ok && id.Name == "note" {
						for _, e := range n.Elts {
							if c, ok := e.(*ast.CompositeLit); ok {
								noteMsg(c)
							}
						}
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each way the code logs, found: a new way needs teaching above.
	for _, m := range []string{"child started", "stop report", "hook output", "imds unavailable",
		"unknown variables ignored", "notices turned on", "pre-stop directory has no hooks yet", "reaped orphan"} {
		if !msgs[m] {
			t.Fatalf("loggedMessages misses %q: it no longer sees every way the code logs", m)
		}
	}
	return msgs, literals
}

var (
	inlineMsg = regexp.MustCompile(`msg="([^"]+)"|"msg":"([^"]+)"`)
	// A message named in prose: a code span followed by "record(s)", or
	// after a level ("one INFO `imds answering again`", "a `WARN` record
	// `cannot write report file`").
	spanRecord  = regexp.MustCompile("`([^`]+)` records?\\b")
	levelRecord = regexp.MustCompile("\\b(?:DEBUG|INFO|WARN|ERROR)`? (?:records? )?`([^`]+)`")
)

// TestDocsLogSamples: every log record shown in the README and docs/ keeps
// the logging rules and, when it is a stop report, validates against
// docs/stop-report.schema.json; its message is one spotinit logs and each
// of its keys one spotinit's code writes; and every message named in the
// prose (msg="...", a `...` record) is one spotinit logs.
func TestDocsLogSamples(t *testing.T) {
	msgs, literals := loggedMessages(t)
	schema := loadSchema(t)
	md, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	reports := 0
	for _, name := range append([]string{"README.md", "CHANGELOG.md"}, md...) {
		text := readDoc(t, name)
		res := logcheck.Check(schema, text)
		for _, p := range res.Problems {
			t.Errorf("%s: %s", name, p)
		}
		reports += res.Reports
		for i, line := range strings.Split(text, "\n") {
			rec, ok, err := logcheck.Parse(line)
			if !ok || err != nil {
				continue
			}
			if m := rec.Get("msg"); !msgs[m] {
				t.Errorf("%s:%d: msg %q is not a message spotinit logs", name, i+1, m)
			}
			for _, k := range rec.Keys {
				if !literals[k] && !slices.Contains([]string{"time", "level", "msg", "logger"}, k) {
					t.Errorf("%s:%d: key %q is not one spotinit's code writes", name, i+1, k)
				}
			}
		}
		for _, m := range inlineMsg.FindAllStringSubmatch(text, -1) {
			if m := m[1] + m[2]; !msgs[m] {
				t.Errorf("%s: msg %q is not a message spotinit logs", name, m)
			}
		}
		prose := strings.Join(strings.Fields(fence.ReplaceAllString(text, "")), " ")
		named := append(spanRecord.FindAllStringSubmatch(prose, -1), levelRecord.FindAllStringSubmatch(prose, -1)...)
		for _, m := range named {
			if !msgs[m[1]] && !slices.Contains([]string{"DEBUG", "INFO", "WARN", "ERROR"}, m[1]) {
				t.Errorf("%s: %q is named as a record, but is not a message spotinit logs", name, m[1])
			}
		}
	}
	if reports < 4 {
		t.Errorf("%d stop reports in the README and docs/, want at least 4 (the README's and docs/stop-report.md's)", reports)
	}
}

// quickStart returns the README's first command, split at " && " into the
// build and the run, and checks that it is in the first 60 lines.
func quickStart(t *testing.T) (build, run, excerpt string) {
	t.Helper()
	readme := readDoc(t, "README.md")
	for i, line := range strings.Split(readme, "\n") {
		if strings.HasPrefix(line, "CGO_ENABLED=0 go build ") {
			if i >= 60 {
				t.Errorf("README.md:%d: the quick start's command is not in the first 60 lines", i+1)
			}
			b, r, ok := strings.Cut(line, " && ")
			if !ok {
				t.Fatalf("README.md:%d: want BUILD && RUN: %s", i+1, line)
			}
			build, run = b, r
			break
		}
	}
	if run == "" {
		t.Fatal("README.md has no quick-start line starting with CGO_ENABLED=0 go build")
	}
	// The excerpt of its output: the code block after the shell block
	// that holds the command.
	_, after, _ := strings.Cut(readme, run)
	_, after, _ = strings.Cut(after, "\n```\n")   // the shell block's end
	_, after, _ = strings.Cut(after, "\n```\n")   // the excerpt's start
	excerpt, _, ok := strings.Cut(after, "\n```") // its end
	if !ok || excerpt == "" {
		t.Fatal("README.md: no output excerpt after the quick start's command")
	}
	return build, run, excerpt
}

// shellWords splits a command line as sh does.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	out, err := exec.Command("sh", "-c", `for a in `+line+`; do printf '%s\0' "$a"; done`).Output()
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}

// TestDocsQuickStart runs the README's first command as a newcomer would,
// from a directory holding spotinit (built with the README's flags: the
// build half is checked against them) and the examples, and checks that
// the rehearsal does what the README says: the hook ran with the notice,
// the app wrapped up, the stop report says code 0 and nothing killed, and
// the README's excerpt of the output is what the run printed, in order.
func TestDocsQuickStart(t *testing.T) {
	if ok, err := scriptCondition("python3"); err != nil {
		t.Fatal(err)
	} else if !ok {
		t.Skip("python3 is not installed")
	}
	build, run, excerpt := quickStart(t)

	words := shellWords(t, strings.TrimPrefix(build, "CGO_ENABLED=0 go build "))
	var flags []string
	for i := 0; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-tags" || w == "-ldflags":
			flags = append(flags, w+"="+words[i+1])
			i++
		case w == "-o":
			if words[i+1] != "spotinit" {
				t.Errorf("the quick start builds %q, then runs ./spotinit", words[i+1])
			}
			i++
		case w != ".":
			flags = append(flags, w)
		}
	}
	if !slices.Equal(flags, readmeFlags) {
		t.Errorf("the quick start builds with %q, TestBuilds with readmeFlags %q", flags, readmeFlags)
	}
	if !strings.HasPrefix(run, "./spotinit ") {
		t.Fatalf("the quick start runs %q, want ./spotinit", run)
	}

	dir := t.TempDir()
	repo, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"spotinit": filepath.Join(buildSpotinit(t), "spotinit"),
		"examples": filepath.Join(repo, "examples"),
	} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// The rehearsal takes about five seconds; the bound catches a run that
	// never ends (a notice that stops nothing), and then ends its group.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", run)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if code, cerr := exitCode(err); cerr != nil || code != 0 {
		t.Fatalf("the quick start exited %d (%v):\n%s%s", code, cerr, stdout.String(), stderr.String())
	}
	res := checkLogs(t, stderr.String())
	if res.Reports != 1 {
		t.Errorf("%d stop reports, want 1", res.Reports)
	}

	var got []logcheck.Record
	for line := range strings.SplitSeq(stderr.String(), "\n") {
		if rec, ok, err := logcheck.Parse(line); ok && err == nil {
			got = append(got, rec)
		}
	}
	var hook, report *logcheck.Record
	for i := range got {
		switch got[i].Get("msg") {
		case "hook output":
			hook = &got[i]
		case "stop report":
			report = &got[i]
		}
	}
	switch {
	case hook == nil || hook.Get("hook") != "pre-stop[1]" ||
		!strings.HasPrefix(hook.Get("line"), "pre-stop hook: spot-interruption terminate, instance gone at "):
		t.Errorf("no hook output with the notice:\n%s", stderr.String())
	case report == nil || report.Get("trigger") != "spot-interruption" || report.Get("code") != "0" ||
		report.Get("child_code") != "0" || report.Get("killed") != "false":
		t.Errorf("stop report %v, want trigger spot-interruption, codes 0, nothing killed", report)
	}
	for _, want := range []string{"SIGTERM Signal Received. Let's wrap up..", "; exiting 0"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the app did not print %q:\n%s", want, stdout.String())
		}
	}

	// The excerpt: its records' messages in the run's order, and the app's
	// lines (but for item numbers and pids) in its output.
	next := 0
	for line := range strings.SplitSeq(excerpt, "\n") {
		rec, ok, err := logcheck.Parse(line)
		switch {
		case ok && err == nil:
			for next < len(got) && got[next].Get("msg") != rec.Get("msg") {
				next++
			}
			if next == len(got) {
				t.Errorf("the README's excerpt shows %q, which the run did not print there:\n%s", rec.Get("msg"), stderr.String())
			}
			next++
		case line == "..." || line == "" || strings.HasPrefix(line, "processed item ") || strings.HasPrefix(line, "app ready: pid "):
		default:
			if line = regexp.MustCompile(`item \d+`).ReplaceAllString(line, "item "); !strings.Contains(
				regexp.MustCompile(`item \d+`).ReplaceAllString(stdout.String(), "item "), line) {
				t.Errorf("the README's excerpt shows %q, which the app did not print:\n%s", line, stdout.String())
			}
		}
	}
}

// dockerfileStage returns the lines of Dockerfile.example's stage name.
func dockerfileStage(t *testing.T, name string) []string {
	t.Helper()
	var lines []string
	in := false
	for line := range strings.SplitSeq(readDoc(t, "Dockerfile.example"), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "FROM" {
			in = len(f) == 4 && f[3] == name
		}
		if in {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		t.Fatalf("Dockerfile.example has no stage %s", name)
	}
	return lines
}

var envLine = regexp.MustCompile(`^(# )?ENV (SPOTINIT_[A-Z0-9_]+)=(.*)$`)

// TestDocsDockerfileSettings: Dockerfile.example's default image gives
// every setting as an ENV line, once: those it sets, which spotinit must
// accept as they stand (the hook directory aside, which is the image's),
// and the others commented out with their default.
func TestDocsDockerfileSettings(t *testing.T) {
	env := dockerfileEnv(t)
	if _, err := configureArgs(t, env); err != nil {
		t.Errorf("spotinit refuses Dockerfile.example's settings %q: %s", env, errorLines(err))
	}
}

// dockerfileEnv returns the settings Dockerfile.example's python stage (the
// sample image) sets, as K=V, checking that it names every setting once.
func dockerfileEnv(t *testing.T) []string {
	t.Helper()
	set := map[string]string{}
	seen := map[string]int{}
	for _, line := range dockerfileStage(t, "python") {
		m := envLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		seen[m[2]]++
		if m[1] == "" {
			set[m[2]] = m[3]
		}
	}
	var env []string
	for _, o := range helpOptions(t) {
		if o.env == "" {
			continue
		}
		if seen[o.env] != 1 {
			t.Errorf("Dockerfile.example's python stage has %s %d times, want once (set, or commented out with its default)", o.env, seen[o.env])
			continue
		}
		v, isSet := set[o.env]
		if !isSet {
			for _, line := range dockerfileStage(t, "python") {
				if m := envLine.FindStringSubmatch(line); m != nil && m[2] == o.env && m[3] != o.def {
					t.Errorf("Dockerfile.example: %q: the default is %q", line, o.def)
				}
			}
			continue
		}
		if o.env == "SPOTINIT_PRE_STOP_DIR" {
			v = filepath.Join("examples", "python", "pre-stop.d") // the image's /pre-stop.d
		}
		env = append(env, o.env+"="+v)
	}
	if len(set) < 5 {
		t.Errorf("Dockerfile.example's python stage sets %d settings: the scan is broken", len(set))
	}
	return env
}

// envStopTimeout reads SPOTINIT_STOP_TIMEOUT from env (K=V).
func envStopTimeout(t *testing.T, where string, env []string) time.Duration {
	t.Helper()
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "SPOTINIT_STOP_TIMEOUT="); ok {
			d, err := parseDuration(v)
			if err != nil {
				t.Fatalf("%s: SPOTINIT_STOP_TIMEOUT %q: %v", where, v, err)
			}
			return d
		}
	}
	t.Fatalf("%s sets no SPOTINIT_STOP_TIMEOUT", where)
	return 0
}

// TestDocsExamplePlatforms: the ECS task definitions and the Kubernetes Pod
// keep the one rule (the runtime's grace equals SPOTINIT_STOP_TIMEOUT),
// keep the image's entrypoint, and give spotinit settings it accepts, over
// those of the image they run (Dockerfile.example's python stage: its hook
// directory, for one).
func TestDocsExamplePlatforms(t *testing.T) {
	image := dockerfileEnv(t)
	ecs, err := filepath.Glob("examples/ecs/*.json")
	if err != nil || len(ecs) < 2 {
		t.Fatalf("examples/ecs: %v, %d task definitions", err, len(ecs))
	}
	for _, name := range ecs {
		var td struct {
			ContainerDefinitions []struct {
				Name        string   `json:"name"`
				StopTimeout *int     `json:"stopTimeout"`
				EntryPoint  []string `json:"entryPoint"`
				Environment []struct {
					Name  string `json:"name"`
					Value string `json:"value"`
				} `json:"environment"`
			} `json:"containerDefinitions"`
		}
		if err := json.Unmarshal([]byte(readDoc(t, name)), &td); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, c := range td.ContainerDefinitions {
			where := name + ": container " + c.Name
			var env []string
			for _, e := range c.Environment {
				env = append(env, e.Name+"="+e.Value)
			}
			if c.StopTimeout == nil {
				t.Errorf("%s: no stopTimeout: ECS's default then depends on the agent's ECS_CONTAINER_STOP_TIMEOUT", where)
			} else if d := envStopTimeout(t, where, env); time.Duration(*c.StopTimeout)*time.Second != d {
				t.Errorf("%s: stopTimeout %d s and SPOTINIT_STOP_TIMEOUT %v differ", where, *c.StopTimeout, d)
			}
			if c.EntryPoint != nil {
				t.Errorf("%s: entryPoint %q replaces spotinit", where, c.EntryPoint)
			}
			// The task's environment wins over the image's: it comes first.
			if _, err := configureArgs(t, append(env, image...)); err != nil {
				t.Errorf("%s: spotinit refuses %q over the image's settings: %s", where, env, errorLines(err))
			}
		}
	}

	pod := readDoc(t, "examples/kubernetes/pod.yaml")
	grace := regexp.MustCompile(`(?m)^\s+terminationGracePeriodSeconds: (\d+)$`).FindStringSubmatch(pod)
	var env []string
	for _, m := range regexp.MustCompile(`(?m)^\s+- name: (SPOTINIT_[A-Z0-9_]+)\n\s+value: "([^"]*)"$`).FindAllStringSubmatch(pod, -1) {
		env = append(env, m[1]+"="+m[2])
	}
	if grace == nil || len(env) < 3 {
		t.Fatalf("pod.yaml: grace %q, env %q: the scan is broken", grace, env)
	}
	if s, _ := strconv.Atoi(grace[1]); time.Duration(s)*time.Second != envStopTimeout(t, "pod.yaml", env) {
		t.Errorf("pod.yaml: terminationGracePeriodSeconds %s and SPOTINIT_STOP_TIMEOUT differ", grace[1])
	}
	if regexp.MustCompile(`(?m)^\s+command:`).MatchString(pod) || !regexp.MustCompile(`(?m)^\s+args:`).MatchString(pod) {
		t.Error("pod.yaml: the app must be args:, and no command: may replace the image's entrypoint")
	}
	if _, err := configureArgs(t, append(env, image...)); err != nil {
		t.Errorf("pod.yaml: spotinit refuses %q over the image's settings: %s", env, errorLines(err))
	}
}

// TestDocsASGHook: examples/asg/complete-lifecycle-action cannot run here
// (it needs EC2's IMDS, the AWS CLI and an Auto Scaling group): its syntax
// is checked with sh -n, and it is run against stand-ins for curl and aws
// that answer as IMDS and the CLI would, and record how they were called.
// It must complete the action by the instance id from IMDS when the group
// is terminating the instance, and do nothing otherwise.
func TestDocsASGHook(t *testing.T) {
	const hook = "examples/asg/complete-lifecycle-action"
	fi, err := os.Stat(hook)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 != 0o111 {
		t.Errorf("%s is %v: --pre-stop-dir runs only executable files", hook, fi.Mode())
	}
	if out, err := exec.Command("sh", "-n", hook).CombinedOutput(); err != nil {
		t.Fatalf("sh -n %s: %v\n%s", hook, err, out)
	}

	bin := t.TempDir()
	fakes := map[string]string{
		"curl": `#!/bin/sh
echo "curl $*" >>"$FAKE_LOG"
for a; do last=$a; done
case "$*" in
*"-X PUT"*) echo TOKEN; exit 0 ;;
esac
case "$*" in *"X-aws-ec2-metadata-token: TOKEN"*) ;; *) exit 22 ;; esac
case "$last" in
*/latest/meta-data/instance-id) echo i-0123456789abcdef0 ;;
*/latest/meta-data/autoscaling/target-lifecycle-state) [ -n "$FAKE_STATE" ] || exit 22; echo "$FAKE_STATE" ;;
*) exit 22 ;;
esac
`,
		"aws": `#!/bin/sh
echo "aws $*" >>"$FAKE_LOG"
[ "$2" = describe-auto-scaling-instances ] && echo my-group
exit 0
`,
	}
	for name, text := range fakes {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		state, group string
		want         []string // the calls of aws
		out          string
	}{
		{"Terminated", "", []string{
			"aws autoscaling describe-auto-scaling-instances --instance-ids i-0123456789abcdef0 --query AutoScalingInstances[0].AutoScalingGroupName --output text",
			"aws autoscaling complete-lifecycle-action --lifecycle-hook-name drain --auto-scaling-group-name my-group --lifecycle-action-result CONTINUE --instance-id i-0123456789abcdef0",
		}, "lifecycle action completed: drain, group my-group, instance i-0123456789abcdef0, CONTINUE"},
		{"Terminated", "web", []string{
			"aws autoscaling complete-lifecycle-action --lifecycle-hook-name drain --auto-scaling-group-name web --lifecycle-action-result CONTINUE --instance-id i-0123456789abcdef0",
		}, "lifecycle action completed"},
		{"InService", "", nil, "nothing to complete: i-0123456789abcdef0 has target lifecycle state InService (event spot-interruption)"},
		{"", "", nil, "target lifecycle state none"}, // 404: in no group
	} {
		log := filepath.Join(t.TempDir(), "calls")
		cmd := exec.Command(hook)
		cmd.Env = []string{
			"PATH=" + bin + ":/usr/bin:/bin",
			"FAKE_LOG=" + log, "FAKE_STATE=" + tc.state,
			"IMDS_ENDPOINT=http://127.0.0.1:9", // never the real IMDS, whatever answers
			"ASG_LIFECYCLE_HOOK=drain", "ASG_NAME=" + tc.group, "SPOTINIT_EVENT=spot-interruption",
		}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), tc.out) {
			t.Errorf("state %q: %v, output %q, want %q", tc.state, err, out, tc.out)
		}
		calls, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		var aws []string
		for line := range strings.SplitSeq(strings.TrimSpace(string(calls)), "\n") {
			if strings.HasPrefix(line, "aws ") {
				aws = append(aws, line)
			} else if !strings.HasPrefix(line, "curl -fsS -m 2 ") || !strings.Contains(line, " http://127.0.0.1:9/latest/") {
				t.Errorf("state %q: curl called as %q", tc.state, line)
			}
		}
		if !slices.Equal(aws, tc.want) {
			t.Errorf("state %q: aws called as\n%s\nwant\n%s", tc.state, strings.Join(aws, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}
