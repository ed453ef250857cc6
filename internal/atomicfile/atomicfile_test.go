package atomicfile

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteReplaces: the new content replaces the old by rename, so a
// reader that opened the old file still reads all of the old content, and
// nothing is left behind.
func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.json")
	if err := os.WriteFile(path, []byte("old content\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := Write(path, "spotinit-report", []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(old); string(b) != "old content\n" {
		t.Errorf("a reader of the old file read %q: the file was written in place", b)
	}
	if b, _ := os.ReadFile(path); string(b) != "new\n" {
		t.Errorf("the file holds %q", b)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", fi.Mode(), err)
	}
	assertOnly(t, dir, "report.json")
}

// TestWriteSymlink: a symlink at the path is replaced, never followed.
func TestWriteSymlink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.json")
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, path); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, "spotinit-report", []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "secret\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("the path is %v (%v), want a regular file", fi.Mode(), err)
	}
}

// TestWriteFailureLeavesNothing: when the rename fails (the path is a
// directory) the temporary file goes too.
func TestWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "report.json", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "report.json"), "spotinit-report", []byte("new\n")); err == nil {
		t.Fatal("rename over a non-empty directory succeeded")
	}
	assertOnly(t, dir, "report.json")
}

func TestCheckDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "report.json"), ""},
		{file, ""}, // an existing file is replaced
		{filepath.Join(dir, "no", "report.json"), "directory " + dir + "/no: no such file or directory"},
		{filepath.Join(file, "report.json"), file + " is not a directory"},
		{dir, dir + " is a directory"},
		// Not writable even for root (a read-only file system says so
		// the same way).
		{"/sys/report.json", "directory /sys is not writable: "},
	} {
		err := CheckDir(tc.path, "spotinit-report")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.path, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
		}
	}
	assertOnly(t, dir, "file")
}

// assertOnly checks that dir holds exactly the names given.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}
