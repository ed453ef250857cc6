// Package interp explains an execve(2) that failed with ENOENT although the
// program exists: the kernel gives the same errno when a script's #!
// interpreter or an ELF binary's dynamic loader (PT_INTERP) is missing, so
// "no such file or directory" alone names the wrong file.
//
// It only reads files (the first 256 bytes, and an ELF file's program
// headers). spotinit uses it after a failed exec, and at start-up on the
// files in --pre-stop-dir, which run only at a stop: there a missing
// interpreter must be found before the first interruption does.
package interp

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// maxDepth bounds the #! chain followed (Linux itself allows a few levels).
const maxDepth = 4

// Missing returns why executing path fails with ENOENT when path is a
// regular file: its #! interpreter or its ELF loader is missing, named in
// the error, which wraps syscall.ENOENT. It returns nil when path itself is
// missing or nothing better can be said.
func Missing(path string) error { return missing(path, 0) }

func missing(path string, depth int) error {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil // executable but unreadable: nothing to look at
	}
	defer f.Close()
	head := make([]byte, 256) // BINPRM_BUF_SIZE: what the kernel reads of a #! line
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	var name, from string
	switch {
	case bytes.HasPrefix(head, []byte("#!")):
		line, _, _ := bytes.Cut(head[2:], []byte("\n"))
		// The kernel splits at spaces and tabs only: a "\r" (a script
		// saved with CRLF) is part of the interpreter's name.
		fields := strings.FieldsFunc(string(line), func(r rune) bool { return r == ' ' || r == '\t' })
		if len(fields) == 0 {
			return nil
		}
		name, from = fields[0], "its interpreter %q (from the #! line)"
	case bytes.HasPrefix(head, []byte(elf.ELFMAG)):
		name, from = loader(f), "its dynamic loader %q (PT_INTERP)"
	}
	if name == "" {
		return nil
	}
	if _, err := os.Stat(name); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf(from+": %w", name, syscall.ENOENT)
	}
	// The interpreter exists: it may be a script or a dynamic binary
	// missing its own.
	if depth < maxDepth {
		if err := missing(name, depth+1); err != nil {
			return fmt.Errorf(from+": %w", name, err)
		}
	}
	return nil
}

// loader returns the PT_INTERP of the ELF file f, or "" for a static
// binary or one that cannot be read.
func loader(f io.ReaderAt) string {
	ef, err := elf.NewFile(f)
	if err != nil {
		return ""
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return ""
			}
			return string(bytes.TrimRight(b, "\x00"))
		}
	}
	return ""
}
