package earlysignal

import (
	"os"
	"os/signal"
	"syscall"
)

// The entry stub in entry_linux_*.s runs only when the binary is linked
// with -ldflags=-E=_spotinit_rt0: the Go runtime replaces every disposition
// before any Go code runs, so there is no other way to learn them, nor to
// catch a signal sent in the first moments after exec. Bit n-1 of each mask
// stands for signal n.
var (
	// startIgnored: the signals that were SIG_IGN at exec; startKnown is 1
	// when the stub ran. Written once, before the runtime starts.
	startIgnored uint64
	startKnown   uint32
	// earlyPending: signals the stub's handler caught before init; read
	// and cleared by init.
	earlyPending uint64
	// sigactBuf and sigactNew are the stub's scratch space for rt_sigaction.
	sigactBuf [4]uint64
	sigactNew [4]uint64
)

// earlyCatch is the set the stub catches (when still SIG_DFL): the table's
// Early signals. A constant expression, so it is in the binary's data before
// anything runs; TestEarlyCatchMatchesTable keeps it equal to the table.
var earlyCatch uint64 = 1<<(syscall.SIGTERM-1) | 1<<(syscall.SIGINT-1) |
	1<<(syscall.SIGHUP-1) | 1<<(syscall.SIGQUIT-1) | 1<<(syscall.SIGUSR1-1) |
	1<<(syscall.SIGUSR2-1) | 1<<(syscall.SIGWINCH-1) | 1<<(syscall.SIGCONT-1) |
	1<<(syscall.SIGALRM-1) | 1<<(syscall.SIGPWR-1) | 1<<(syscall.SIGTSTP-1) |
	1<<(syscall.SIGTTIN-1) | 1<<(syscall.SIGTTOU-1)

// StartIgnored reports the signals that were ignored when spotinit was
// executed, and whether that is known exactly. Without the entry stub only
// SIGHUP and SIGINT can be reported: the Go runtime itself leaves those two
// ignored when it finds them so.
func StartIgnored() (sigs []syscall.Signal, exact bool) {
	_, _, _ = sigactBuf, sigactNew, earlyCatch // used by the stub only
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
		if isCaught(s) {
			out = append(out, s)
		}
	}
	return out
}
