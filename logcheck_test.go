package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spotinit/spotinit/internal/logcheck"
)

// Every log record the tests make spotinit write is checked against the
// logging rules, and every stop report against docs/stop-report.schema.json
// (internal/logcheck): those of the scripts by runScripts, whatever a script
// does; those of the Go tests that run the built binary by checkLogs.

var schemaFile struct {
	once sync.Once
	s    *logcheck.Schema
	err  error
}

func loadSchema(t testing.TB) *logcheck.Schema {
	t.Helper()
	schemaFile.once.Do(func() {
		p, err := logcheck.SchemaPath()
		if err == nil {
			schemaFile.s, err = logcheck.LoadSchema(p)
		}
		schemaFile.err = err
	})
	if schemaFile.err != nil {
		t.Fatal(schemaFile.err)
	}
	return schemaFile.s
}

// checkLogs fails the test for every record in out that breaks the logging
// rules and every stop report that does not validate.
func checkLogs(t testing.TB, out string) logcheck.Result {
	t.Helper()
	res := logcheck.Check(loadSchema(t), out)
	for _, p := range res.Problems {
		t.Errorf("log record: %s", p)
	}
	return res
}

// runScripts runs the scripts of p as testscript.Run does, with every
// script's whole log checked by checkLogs when it ends. testscript writes
// the stdout and stderr of every command into that log ("[stderr]" and the
// text, at exec or at wait); scriptT keeps the log whole (testscript drops
// the phases that passed unless verbose), so no command's output, and no
// script, escapes the check. TestScriptLogCheck shows that it catches a bad
// record and sees a real report.
func runScripts(t *testing.T, p testscript.Params) {
	if d, ok := t.Deadline(); ok && p.Deadline.IsZero() {
		p.Deadline = d
	}
	testscript.RunT(scriptT{T: t, check: func(t *testing.T, log string) { checkLogs(t, log) }}, p)
}

// scriptT is the testscript.T of runScripts.
type scriptT struct {
	*testing.T
	check func(t *testing.T, log string)
}

func (s scriptT) Run(name string, f func(testscript.T)) {
	s.T.Run(name, func(t *testing.T) { f(scriptT{T: t, check: s.check}) })
}

// Verbose keeps the output of every command in the script's log.
func (s scriptT) Verbose() bool { return true }

// Log is called once, with the script's whole log, when it ends: the log is
// checked, and shown as testscript would show it (on failure, or with -v).
func (s scriptT) Log(args ...any) {
	log := fmt.Sprint(args...)
	s.check(s.T, log)
	if s.T.Failed() || testing.Verbose() {
		s.T.Log(log)
	}
}

// TestScriptLogCheck is the negative control of runScripts: a script that
// prints a record with a key twice fails the check, and the check sees the
// stop report of a spotinit run in the background and one in the
// foreground, in both formats.
func TestScriptLogCheck(t *testing.T) {
	bin := buildSpotinit(t)
	dir := t.TempDir()
	script := `exec spotinit --imds off --log-format json testchild exit 0
exec launch -status st -- spotinit --imds off testchild exit 3 &bg&
exec testchild print '{"time":"2026-12-04T14:24:36.956Z","level":"INFO","msg":"x","logger":"spotinit","msg":"y"}'
wait bg
`
	if err := os.WriteFile(filepath.Join(dir, "control.txtar"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	var got logcheck.Result
	// The scripts run in parallel subtests: the group returns after them.
	t.Run("group", func(t *testing.T) {
		testscript.RunT(scriptT{T: t, check: func(t *testing.T, log string) {
			got = logcheck.Check(loadSchema(t), log)
		}}, testscript.Params{
			Dir: dir,
			Setup: func(env *testscript.Env) error {
				env.Setenv("PATH", bin+string(os.PathListSeparator)+env.Getenv("PATH"))
				return nil
			},
		})
	})
	if got.Reports != 2 {
		t.Errorf("the check saw %d stop reports, want 2", got.Reports)
	}
	if len(got.Problems) != 1 || !strings.Contains(got.Problems[0], `key "msg" twice`) {
		t.Errorf("problems %q, want the one key twice", got.Problems)
	}
}

// cmdReportfile validates a --report-file document: reportfile FILE.
func cmdReportfile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: reportfile FILE")
	}
	s, err := logcheck.LoadSchema(mustSchemaPath(ts))
	ts.Check(err)
	if ps := logcheck.CheckFile(s, []byte(ts.ReadFile(args[0]))); len(ps) > 0 {
		ts.Fatalf("%s: %s", args[0], strings.Join(ps, "; "))
	}
}

func mustSchemaPath(ts *testscript.TestScript) string {
	p, err := logcheck.SchemaPath()
	ts.Check(err)
	return p
}
