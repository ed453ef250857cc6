package preflight

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
)

// What exec needs of an ELF file, read by hand: debug/elf would add about
// 180 KB to the binary for one program header.

const (
	elfMagic  = "\x7fELF"
	ptInterp  = 3    // PT_INTERP: the program header naming the dynamic loader
	maxPhnum  = 4096 // more program headers than any real binary has
	maxInterp = 4096 // PATH_MAX
)

// elfMachines names the ELF machines of the architectures Go builds for
// here, by e_machine.
var elfMachines = map[uint16]string{
	3:   "386",
	21:  "ppc64",
	22:  "s390x",
	40:  "arm",
	62:  "amd64",
	183: "arm64",
	243: "riscv64",
}

// nativeMachine is the e_machine of binaries that run here without
// emulation (0 when unknown).
func nativeMachine() uint16 {
	arch := runtime.GOARCH
	if arch == "ppc64le" {
		arch = "ppc64"
	}
	for m, name := range elfMachines {
		if name == arch {
			return m
		}
	}
	return 0
}

var errNotELF = errors.New("not an ELF file")

// readELF reads an ELF file's machine and the loader its PT_INTERP names
// ("" for a static binary). It reads little and trusts nothing: offsets
// and sizes out of range are errors, never panics.
func readELF(r io.ReaderAt) (machine uint16, loader string, err error) {
	var ident [64]byte // e_ident and the rest of the largest header
	n, err := r.ReadAt(ident[:], 0)
	if n < 52 || string(ident[:4]) != elfMagic {
		if err == nil || err == io.EOF {
			err = errNotELF
		}
		return 0, "", err
	}
	var bo binary.ByteOrder
	switch ident[5] {
	case 1:
		bo = binary.LittleEndian
	case 2:
		bo = binary.BigEndian
	default:
		return 0, "", fmt.Errorf("ELF data encoding %d", ident[5])
	}
	machine = bo.Uint16(ident[18:])
	var phoff uint64
	var phentsize, phnum uint16
	switch ident[4] {
	case 1: // 32-bit
		phoff = uint64(bo.Uint32(ident[28:]))
		phentsize, phnum = bo.Uint16(ident[42:]), bo.Uint16(ident[44:])
	case 2: // 64-bit
		if n < 64 {
			return 0, "", errNotELF
		}
		phoff = bo.Uint64(ident[32:])
		phentsize, phnum = bo.Uint16(ident[54:]), bo.Uint16(ident[56:])
	default:
		return 0, "", fmt.Errorf("ELF class %d", ident[4])
	}
	minEntry := uint16(32)
	if ident[4] == 2 {
		minEntry = 56
	}
	if phnum == 0 {
		return machine, "", nil
	}
	if phentsize < minEntry || phnum > maxPhnum || phoff > 1<<40 {
		return machine, "", fmt.Errorf("ELF program headers out of range")
	}
	ph := make([]byte, phentsize)
	for i := range uint64(phnum) {
		if _, err := r.ReadAt(ph, int64(phoff+i*uint64(phentsize))); err != nil {
			return machine, "", fmt.Errorf("ELF program header %d: %w", i, err)
		}
		if bo.Uint32(ph) != ptInterp {
			continue
		}
		var off, size uint64
		if ident[4] == 1 {
			off, size = uint64(bo.Uint32(ph[4:])), uint64(bo.Uint32(ph[16:]))
		} else {
			off, size = bo.Uint64(ph[8:]), bo.Uint64(ph[32:])
		}
		if size == 0 || size > maxInterp || off > 1<<40 {
			return machine, "", fmt.Errorf("ELF PT_INTERP out of range")
		}
		b := make([]byte, size)
		if _, err := r.ReadAt(b, int64(off)); err != nil {
			return machine, "", fmt.Errorf("ELF PT_INTERP: %w", err)
		}
		for i, c := range b {
			if c == 0 {
				b = b[:i]
				break
			}
		}
		return machine, string(b), nil
	}
	return machine, "", nil
}
