package preflight

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadELFMatchesDebugELF: on the binaries at hand (dynamic and
// static), readELF finds what debug/elf finds.
func TestReadELFMatchesDebugELF(t *testing.T) {
	t.Parallel()
	self, _ := os.Executable()
	n := 0
	for _, p := range []string{"/bin/sh", "/usr/bin/python3", "/usr/bin/env", self} {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue
		}
		ef, err := elf.Open(real)
		if err != nil {
			continue
		}
		var want string
		for _, prog := range ef.Progs {
			if prog.Type == elf.PT_INTERP {
				b, _ := io.ReadAll(prog.Open())
				want = strings.TrimRight(string(b), "\x00")
			}
		}
		machine := ef.Machine
		ef.Close()
		f, err := os.Open(real)
		if err != nil {
			t.Fatal(err)
		}
		m, loader, err := readELF(f)
		f.Close()
		if err != nil || m != uint16(machine) || loader != want {
			t.Errorf("%s: readELF = %d %q %v; debug/elf: %d %q", real, m, loader, err, machine, want)
		}
		n++
	}
	if n == 0 {
		t.Skip("no ELF binary to compare with")
	}
	// This machine runs its own binaries natively.
	if m := nativeMachine(); m == 0 {
		t.Errorf("no ELF machine known for this GOARCH")
	}
}

// elf32 builds a big-endian 32-bit ELF file whose one program header is a
// PT_INTERP naming interp.
func elf32(interp string) []byte {
	bo := binary.BigEndian
	b := make([]byte, 52+32)
	copy(b, elfMagic)
	b[4], b[5], b[6] = 1, 2, 1     // 32-bit, big-endian, version
	bo.PutUint16(b[18:], 22)       // s390
	bo.PutUint32(b[28:], 52)       // e_phoff
	bo.PutUint16(b[42:], 32)       // e_phentsize
	bo.PutUint16(b[44:], 1)        // e_phnum
	bo.PutUint32(b[52:], ptInterp) // p_type
	bo.PutUint32(b[52+4:], 52+32)  // p_offset
	bo.PutUint32(b[52+16:], uint32(len(interp)+1))
	return append(b, interp+"\x00"...)
}

func TestReadELF(t *testing.T) {
	t.Parallel()
	m, loader, err := readELF(bytes.NewReader(elf32("/lib/ld.so.1")))
	if err != nil || m != 22 || loader != "/lib/ld.so.1" {
		t.Errorf("elf32: %d %q %v", m, loader, err)
	}
	// Whatever is wrong is an error, never a panic or a huge allocation.
	good := elf32("/lib/ld.so.1")
	for name, mutate := range map[string]func([]byte) []byte{
		"truncated":      func(b []byte) []byte { return b[:40] },
		"not elf":        func(b []byte) []byte { b[0] = 'X'; return b },
		"bad class":      func(b []byte) []byte { b[4] = 9; return b },
		"bad data":       func(b []byte) []byte { b[5] = 9; return b },
		"tiny phent":     func(b []byte) []byte { binary.BigEndian.PutUint16(b[42:], 4); return b },
		"phoff far away": func(b []byte) []byte { binary.BigEndian.PutUint32(b[28:], 1<<31); return b },
		"huge interp":    func(b []byte) []byte { binary.BigEndian.PutUint32(b[52+16:], 1<<30); return b },
		"interp past end": func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[52+4:], 1<<20)
			return b
		},
	} {
		b := mutate(append([]byte(nil), good...))
		if _, _, err := readELF(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzReadELF: any file is read without a panic, and a loader found is
// never longer than PATH_MAX.
func FuzzReadELF(f *testing.F) {
	f.Add(elf32("/lib/ld.so.1"))
	f.Add([]byte(elfMagic))
	if b, err := os.ReadFile("/bin/true"); err == nil && len(b) < 1<<20 {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, loader, _ := readELF(bytes.NewReader(b))
		if len(loader) > maxInterp {
			t.Fatalf("loader of %d bytes", len(loader))
		}
	})
}
