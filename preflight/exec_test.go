package preflight

import (
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spotinit/spotinit/hooks"
)

// write makes a file with content and mode under dir and returns its path.
func write(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // not subject to the umask
		t.Fatal(err)
	}
	return p
}

func TestProgram(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := t.TempDir() // a PATH with only an interpreter named "tool"
	write(t, bin, "tool", "#!/bin/sh\n", 0o755)
	path := []string{"PATH=" + bin}
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		detail        string // substring of the detail
		issue         string // substring of the issue's message; "" for none
		code          int
	}{
		{"ok.sh", "#!/bin/sh\necho hi\n", 0o755, "#!/bin/sh (", "", 0},
		{"args.sh", "#!/bin/sh -eu\n", 0o755, "#!/bin/sh -eu", "", 0},
		{"noexec.sh", "#!/bin/sh\n", 0o644, "not executable", "is not executable (mode -rw-r--r--)", 126},
		{"nointerp.sh", "#!/nonexistent/bash\n", 0o755, "missing", "starts with #!/nonexistent/bash, and /nonexistent/bash is missing in this image", 126},
		{"env-ok", "#!/usr/bin/env tool\n", 0o755, "#!/usr/bin/env tool (" + bin + "/tool: #!/bin/sh", "", 0},
		{"env-S", "#!/usr/bin/env -S tool -x\n", 0o755, bin + "/tool", "", 0},
		{"env-missing", "#!/usr/bin/env python9\n", 0o755, "python9 not found", "python9 is not found in PATH", 127},
		{"chain", "#!" + dir + "/ok.sh\n", 0o755, "#!" + dir + "/ok.sh (#!/bin/sh", "", 0},
		{"plain", "echo no shebang\n", 0o755, "no #! line", "exec format error", 126},
		{"empty-shebang", "#!\n", 0o755, "empty #! line", "empty #! line", 126},
	} {
		p := write(t, dir, tc.name, tc.content, tc.mode)
		detail, iss := program(p, path, 0)
		switch {
		case !strings.Contains(detail, tc.detail):
			t.Errorf("%s: detail %q, want %q", tc.name, detail, tc.detail)
		case tc.issue == "" && iss != nil:
			t.Errorf("%s: unexpected issue %+v", tc.name, iss)
		case tc.issue != "" && (iss == nil || !strings.Contains(iss.msg, tc.issue) || iss.code != tc.code || iss.fix == ""):
			t.Errorf("%s: issue %+v, want %q (%d)", tc.name, iss, tc.issue, tc.code)
		}
	}
	if _, iss := program(filepath.Join(dir, "missing"), path, 0); iss == nil || iss.code != 127 {
		t.Errorf("missing file: %+v", iss)
	}
	if _, iss := program(dir, path, 0); iss == nil || !strings.Contains(iss.msg, "not a regular file (a directory)") {
		t.Errorf("directory: %+v", iss)
	}
	// A loop of #! lines ends.
	write(t, dir, "loop", "#!"+filepath.Join(dir, "loop")+"\n", 0o755)
	if _, iss := program(filepath.Join(dir, "loop"), path, 0); iss == nil || !strings.Contains(iss.msg, "too many levels") {
		t.Errorf("loop: %+v", iss)
	}
}

// TestProgramELF: a dynamic binary's loader is checked; a copy whose
// loader name points nowhere is "no such file or directory" at exec.
func TestProgramELF(t *testing.T) {
	t.Parallel()
	sh := "/bin/sh"
	real, err := filepath.EvalSymlinks(sh)
	if err != nil {
		t.Skip(err)
	}
	ef, err := elf.Open(real)
	if err != nil {
		t.Skip(err)
	}
	var loader string
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			b, _ := io.ReadAll(p.Open())
			loader = strings.TrimRight(string(b), "\x00")
		}
	}
	ef.Close()
	if loader == "" {
		t.Skipf("%s is static", real)
	}
	detail, iss := program(real, nil, 0)
	if iss != nil || detail != "ELF, loader "+loader {
		t.Fatalf("%s: %q %+v", real, detail, iss)
	}
	b, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	bogus := "/x" + strings.Repeat("y", len(loader)-2) // same length
	b = bytes.Replace(b, []byte(loader+"\x00"), []byte(bogus+"\x00"), 1)
	p := write(t, t.TempDir(), "dynamic", string(b), 0o755)
	_, iss = program(p, nil, 0)
	if iss == nil || !strings.Contains(iss.msg, "needs the dynamic loader "+bogus+", which is missing") || iss.code != 126 {
		t.Errorf("bogus loader: %+v", iss)
	}
	// spotinit itself is static: the test binary may not be, so build no
	// assumption on it.
}

func TestHooks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "10-ok", "#!/bin/sh\n", 0o755)
	write(t, dir, "20-noexec", "#!/bin/sh\n", 0o644)
	write(t, dir, "30-bash", "#!/nonexistent/bash\n", 0o755)
	write(t, dir, ".hidden", "", 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.Symlink("/nonexistent/target", filepath.Join(dir, "40-dangling"))

	cfg := baseConfig(t, nil)
	cfg.PreStop = hooks.Commands("pre-stop", []string{"echo a, b"})
	// A FROM scratch image: no /bin/sh (the hook's Path is the seam).
	cfg.OnRebalance = []hooks.Hook{{Name: "on-rebalance[1]", Path: "/nonexistent/sh", Argv: []string{"sh", "-c", "echo r"}}}
	cfg.PreStopDir = dir
	r := Run(context.Background(), cfg)

	wantFinding(t, &r, Problem, "hooks", `--on-rebalance "echo r" runs with /nonexistent/sh, and /nonexistent/sh is missing in this image`)
	wantFinding(t, &r, Problem, "hooks", dir+"/20-noexec is not executable", "it will be skipped at a stop", "chmod +x "+dir+"/20-noexec")
	wantFinding(t, &r, Problem, "hooks", dir+"/30-bash starts with #!/nonexistent/bash", "it will fail at a stop")
	wantFinding(t, &r, Problem, "hooks", dir+"/40-dangling is missing", "skipped")
	wantFinding(t, &r, Warning, "hooks", "--on-rebalance hooks will never run: --notices does not watch rebalance recommendations")
	if n := len(findings(&r, Problem, "hooks")); n != 4 {
		t.Errorf("%d hook problems:\n%s", n, dump(&r))
	}
	var names []string
	for _, h := range r.Hooks {
		names = append(names, h.Kind+":"+filepath.Base(h.Name))
	}
	if strings.Join(names, " ") != "pre-stop:pre-stop[1] on-rebalance:on-rebalance[1] pre-stop-dir:10-ok pre-stop-dir:20-noexec pre-stop-dir:30-bash pre-stop-dir:40-dangling" {
		t.Errorf("hooks reported: %q", names)
	}
	if h := r.Hooks[0]; !h.OK || h.Command != "echo a, b" || h.Path != "/bin/sh" {
		t.Errorf("pre-stop hook %+v", h)
	}

	// Agreement with hooks.Dir: exactly the files it would run are OK
	// or fail at a stop; the rest are reported as skipped.
	runnable, _, _ := hooks.Dir(dir)
	if len(runnable) != 2 || runnable[0].Name != "10-ok" || runnable[1].Name != "30-bash" {
		t.Errorf("hooks.Dir runs %+v", runnable)
	}
}

func TestHookDirMissingOrEmpty(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t, nil)
	cfg.PreStopDir = "/nonexistent/pre-stop.d"
	r := Run(context.Background(), cfg)
	wantFinding(t, &r, Problem, "hooks", "--pre-stop-dir /nonexistent/pre-stop.d: no such file or directory", "create the directory")

	cfg.PreStopDir = t.TempDir()
	r = Run(context.Background(), cfg)
	wantFinding(t, &r, Warning, "hooks", "holds no files")
	if !r.OK() {
		t.Errorf("an empty hook directory is a warning:\n%s", dump(&r))
	}
}

func TestOutputFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := write(t, dir, "file", "", 0o644)
	for _, tc := range []struct {
		path, problem string
	}{
		{filepath.Join(dir, "out.json"), ""},
		{filepath.Join(dir, "missing", "out.json"), "no such file or directory"},
		{filepath.Join(file, "out.json"), "is not a directory"},
		{dir, "it is a directory"},
	} {
		for _, option := range []string{"notice-file", "report-file"} {
			cfg := baseConfig(t, nil)
			if option == "notice-file" {
				cfg.NoticeFile = tc.path
			} else {
				cfg.ReportFile = tc.path
			}
			r := Run(context.Background(), cfg)
			got := findings(&r, Problem, "hooks")
			if tc.problem == "" && (len(got) != 0 || !r.Hooks[0].OK || r.Hooks[0].Kind != option || !strings.Contains(r.Hooks[0].Detail, "writable")) ||
				tc.problem != "" && (len(got) != 1 || !strings.Contains(got[0], "--"+option+" ") || !strings.Contains(got[0], tc.problem)) {
				t.Errorf("--%s %s: %q %+v", option, tc.path, got, r.Hooks)
			}
		}
	}
	// A read-only file system says so through access(2); as root the
	// mode bits do not, so that case is left to the e2e suite.
}

func TestCommand(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	write(t, bin, "app", "#!/bin/sh\n", 0o755)
	write(t, bin, "noexec", "#!/bin/sh\n", 0o644)
	write(t, bin, "badinterp", "#!/nonexistent/python\n", 0o755)
	for _, tc := range []struct {
		argv    []string
		path    string // found path; "" when not found
		problem string
	}{
		{nil, "", ""},
		{[]string{"app", "-x"}, bin + "/app", ""},
		{[]string{bin + "/app"}, bin + "/app", ""},
		{[]string{"nothere"}, "", `"nothere" is not found in PATH=` + bin + ": the container would exit 127"},
		{[]string{bin + "/noexec"}, bin + "/noexec", "is not executable (mode -rw-r--r--)"},
		{[]string{"badinterp"}, bin + "/badinterp", "the container would exit 126"},
	} {
		cfg := baseConfig(t, map[string]string{"PATH": bin})
		cfg.Argv = tc.argv
		r := Run(context.Background(), cfg)
		got := findings(&r, Problem, "command")
		if r.Command.Path != tc.path || tc.problem == "" && len(got) != 0 || tc.problem != "" && (len(got) != 1 || !strings.Contains(got[0], tc.problem)) {
			t.Errorf("%q: %+v, problems %q", tc.argv, r.Command, got)
		}
	}
	// "noexec" is found by name like the supervisor finds it (mode bits),
	// then refused by access(2).
	cfg := baseConfig(t, map[string]string{"PATH": bin})
	cfg.Argv = []string{"noexec"}
	r := Run(context.Background(), cfg)
	if got := findings(&r, Problem, "command"); len(got) != 1 || !strings.Contains(got[0], "not found") {
		t.Errorf("noexec by name: %q", got)
	}
}
