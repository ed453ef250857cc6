package hooks

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDir builds a hook directory with every kind of entry and checks what
// Dir makes of it, then runs the result to check the order.
func TestDir(t *testing.T) {
	dir := t.TempDir()
	order := filepath.Join(t.TempDir(), "order")
	// Each hook appends its own name (from $0) to the order file.
	script := "#!/bin/sh\necho \"${0##*/}\" >> \"$ORDER\"\n"
	for _, name := range []string{"2-c", "10-b", "01-a"} {
		writeFile(t, dir, name, script, 0o755)
	}
	writeFile(t, dir, ".hidden", script, 0o755)
	writeFile(t, dir, "notes.txt", script, 0o644)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub"), "inner", script, 0o755)
	if err := os.Symlink("01-a", filepath.Join(dir, "05-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("missing", filepath.Join(dir, "06-dangling")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "07-fifo"), 0o755); err != nil {
		t.Fatal(err)
	}

	hooks, skipped, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range hooks {
		names = append(names, h.Name)
		if want := filepath.Join(dir, h.Name); h.Path != want || !slices.Equal(h.Argv, []string{want}) {
			t.Errorf("hook %s: path %q argv %q, want the file run directly", h.Name, h.Path, h.Argv)
		}
	}
	if want := []string{"01-a", "05-link", "10-b", "2-c"}; !slices.Equal(names, want) {
		t.Errorf("Dir found %q, want %q", names, want)
	}
	for _, want := range []struct{ name, problem string }{
		{"06-dangling", "no such file"},
		{"07-fifo", "not a regular file (named pipe)"},
		{"notes.txt", "not executable"},
	} {
		found := false
		for _, e := range skipped {
			found = found || strings.Contains(e.Error(), filepath.Join(dir, want.name)) && strings.Contains(e.Error(), want.problem)
		}
		if !found {
			t.Errorf("no error naming %s and %q in %q", want.name, want.problem, skipped)
		}
	}
	if len(skipped) != 3 {
		t.Errorf("%d entries reported, want 3: %q", len(skipped), skipped)
	}

	cfg, _, _ := testConfig(t)
	cfg.Env = append(cfg.Env, "ORDER="+order)
	res, _ := runBounded(t, context.Background(), cfg, hooks, time.Time{}, waitLimit)
	for _, r := range res {
		if r.Code != 0 {
			t.Errorf("hook %s: %+v", r.Name, r)
		}
	}
	b, err := os.ReadFile(order)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "01-a\n05-link\n10-b\n2-c\n"; got != want {
		t.Errorf("hooks ran as %q, want %q", got, want)
	}
}

func TestDirUnreadable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	if _, _, err := Dir(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Dir(missing) error %v, want one naming %s", err, missing)
	}
	hooks, skipped, err := Dir(t.TempDir())
	if err != nil || len(hooks) != 0 || len(skipped) != 0 {
		t.Errorf("Dir(empty) = %v, %v, %v; want nothing", hooks, skipped, err)
	}
}

func TestCheckDir(t *testing.T) {
	base := t.TempDir()
	file := writeFile(t, base, "file", "", 0o644)
	missing := filepath.Join(base, "missing")
	if err := CheckDir(base); err != nil {
		t.Errorf("CheckDir(%s): %v", base, err)
	}
	for _, tc := range []struct {
		path, problem string
		is            error
	}{
		{missing, "no such file or directory", fs.ErrNotExist},
		{file, "not a directory", syscall.ENOTDIR},
	} {
		err := CheckDir(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.problem) || !errors.Is(err, tc.is) {
			t.Errorf("CheckDir(%s) = %v, want an error naming it and %q", tc.path, err, tc.problem)
		}
	}
	t.Run("unreadable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			// Root reads any directory: run this subtest again as an
			// unprivileged user, where it checks for real.
			asNobody(t)
			return
		}
		locked := filepath.Join(t.TempDir(), "locked")
		if err := os.Mkdir(locked, 0o000); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(locked, 0o755)
		if err := CheckDir(locked); err == nil || !strings.Contains(err.Error(), locked) || !errors.Is(err, fs.ErrPermission) {
			t.Errorf("CheckDir(%s) = %v, want permission denied", locked, err)
		}
	})
}

// nobody is the unprivileged user (and group) asNobody runs tests as.
const nobody = 65534

// asNobody runs the calling test again in a copy of this test binary as
// user and group nobody, and fails if it does not pass there. The copy lives
// in a directory nobody may enter: go test keeps the binary in one only root
// may.
func asNobody(t *testing.T) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "hooks-test")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "hooks.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	// Run exactly this test: every level of its name, anchored.
	var run []string
	for _, part := range strings.Split(t.Name(), "/") {
		run = append(run, "^"+regexp.QuoteMeta(part)+"$")
	}
	cmd := exec.Command(bin, "-test.run="+strings.Join(run, "/"), "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + os.TempDir(), "HOME=/"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as uid %d: %v\n%s", nobody, err, out)
	}
	// It must have run, not skipped nor matched nothing.
	if want := "--- PASS: " + t.Name() + " "; !strings.Contains(string(out), want) {
		t.Fatalf("as uid %d: no %q in its output:\n%s", nobody, want, out)
	}
	t.Logf("as uid %d:\n%s", nobody, out)
}

func TestCheckShell(t *testing.T) {
	if err := CheckShell(); err != nil {
		t.Fatalf("CheckShell: %v (the tests need /bin/sh)", err)
	}
	base := t.TempDir()
	for _, tc := range []struct {
		path, problem string
	}{
		{filepath.Join(base, "sh"), "no such file or directory"},
		{writeFile(t, base, "plain", "#!/bin/sh\n", 0o644), "not executable"},
		{base, "not a regular file (directory)"},
	} {
		err := checkProgram(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.problem) {
			t.Errorf("checkProgram(%s) = %v, want an error naming it and %q", tc.path, err, tc.problem)
		}
	}
}
