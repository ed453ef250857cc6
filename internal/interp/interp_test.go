package interp

import (
	"debug/elf"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMissingScripts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inner := write("inner", "#!/nonexistent/inner\n")
	for _, tc := range []struct {
		name, path, want string // want "" means nil
	}{
		{"missing interpreter", write("bad", "#!/nonexistent/interp -x\necho\n"),
			`its interpreter "/nonexistent/interp" (from the #! line): no such file or directory`},
		{"CRLF line", write("crlf", "#!/bin/sh\r\necho\r\n"),
			`its interpreter "/bin/sh\r" (from the #! line): no such file or directory`},
		{"interpreter missing its own", write("chain", "#!"+inner+"\n"),
			`its interpreter "` + inner + `" (from the #! line): its interpreter "/nonexistent/inner" (from the #! line): no such file or directory`},
		{"interpreter present", write("good", "#!/bin/sh\necho\n"), ""},
		{"empty #! line", write("empty", "#!\n"), ""},
		{"no #! line", write("plain", "echo\n"), ""},
		{"program missing", filepath.Join(dir, "nothing"), ""},
		{"directory", dir, ""},
	} {
		err := Missing(tc.path)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: Missing = %v, want nil", tc.name, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want || !errors.Is(err, syscall.ENOENT)):
			t.Errorf("%s: Missing = %v, want %q wrapping ENOENT", tc.name, err, tc.want)
		}
	}
}

// TestMissingLoader patches the PT_INTERP of a copy of a real dynamic
// binary to name a loader that does not exist.
func TestMissingLoader(t *testing.T) {
	const bin = "/bin/true"
	f, err := elf.Open(bin)
	if err != nil {
		t.Skipf("no ELF %s to copy: %v", bin, err)
	}
	var interp *elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp = p
		}
	}
	f.Close()
	if interp == nil {
		t.Skipf("%s is static", bin)
	}
	// Positive control: the real binary's loader exists.
	if err := Missing(bin); err != nil {
		t.Fatalf("Missing(%s) = %v, want nil", bin, err)
	}
	const bogus = "/nonexistent/ld.so"
	if uint64(len(bogus)) >= interp.Filesz {
		t.Skipf("PT_INTERP of %s too short to patch", bin)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	seg := b[interp.Off : interp.Off+interp.Filesz]
	clear(seg)
	copy(seg, bogus)
	patched := filepath.Join(t.TempDir(), "true")
	if err := os.WriteFile(patched, b, 0o755); err != nil {
		t.Fatal(err)
	}
	err = Missing(patched)
	want := `its dynamic loader "` + bogus + `" (PT_INTERP): no such file or directory`
	if err == nil || err.Error() != want || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Missing = %v, want %q", err, want)
	}
	// A script whose interpreter is that binary names both.
	script := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(script, []byte("#!"+patched+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Missing(script); err == nil || !strings.Contains(err.Error(), `(from the #! line): its dynamic loader "`+bogus+`"`) {
		t.Fatalf("Missing(script) = %v", err)
	}
}
