package earlysignal

import (
	"os"
	"os/signal"
	"slices"
	"syscall"
)

// startIgnored and startKnown are written once, before the Go runtime
// starts, by the entry stub in entry_linux_*.s (bit n-1 set: signal n was
// SIG_IGN when spotinit was executed). The stub runs only when the binary is
// linked with -ldflags=-E=_spotinit_rt0; the Go runtime replaces every
// disposition before any Go code runs, so there is no other way to learn
// them. sigactBuf is the stub's scratch space for rt_sigaction.
var (
	startIgnored uint64
	startKnown   uint32
	sigactBuf    [8]uint64
)

// StartIgnored reports the signals that were ignored when spotinit was
// executed, and whether that is known exactly. Without the entry stub only
// SIGHUP and SIGINT can be reported: the Go runtime itself leaves those two
// ignored when it finds them so.
func StartIgnored() (sigs []syscall.Signal, exact bool) {
	_ = sigactBuf // referenced so the stub's scratch space is always linked
	for n := 1; n <= 64; n++ {
		if startIgnored&(1<<(n-1)) != 0 {
			sigs = append(sigs, syscall.Signal(n))
		}
	}
	return sigs, startKnown != 0
}

// AsInherited runs start (which forks and execs a process) with the caught
// signals that were ignored when spotinit started set back to ignored, so the
// new process inherits them ignored as it would have without spotinit: the Go
// runtime resets every signal it handles to the default in a new child.
// Signals of those numbers that arrive during start are dropped; they were
// ignored by whoever started spotinit. SIGCHLD is never touched: ignoring it
// even for a moment lets the kernel discard a child's exit status.
// Callers serialise calls (the reaper starts processes under its lock).
func AsInherited(start func()) {
	ign := caughtIgnored()
	if len(ign) == 0 {
		start()
		return
	}
	signal.Ignore(ign...)
	defer Renotify(ign...)
	start()
}

func caughtIgnored() []os.Signal {
	sigs, _ := StartIgnored()
	var out []os.Signal
	for _, s := range sigs {
		if isStop(s) || slices.Contains(OtherSignals, os.Signal(s)) {
			out = append(out, s)
		}
	}
	return out
}
