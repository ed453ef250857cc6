package earlysignal

import (
	"os"
	"syscall"
)

// Handling says what spotinit does with a signal it catches.
type Handling uint8

// The properties a caught signal may have.
const (
	// Early: the entry stub catches it from exec on, before the Go runtime
	// has a handler (when it was not ignored), and init hands it on.
	Early Handling = 1 << iota
	// Forwarded: the supervisor forwards it to the child, after rewriting.
	Forwarded
	// StartsStop: it starts the stop sequence. It has a channel of its own,
	// so that a flood of other signals can never crowd it out.
	StartsStop
	// JobStop: a terminal job-control stop. Like dumb-init, spotinit
	// forwards it and then stops itself, so that a shell running spotinit
	// sees its job stop.
	JobStop
	// Fatal: it ends a Go program that has not called Notify for it (the
	// runtime's SigKill and SigThrow kinds), so init registers it first;
	// the runtime only drops the others until they are registered.
	Fatal
)

// table is every signal spotinit catches and what it does with each: the
// one place these decisions are written. The channels' Notify lists, the
// supervisor's allow-list and its stop and job-control tests derive from
// it; the entry stub's earlyCatch cannot (the stub reads it before any Go
// code runs), so a test checks it against the table.
//
// Never caught here: SIGCHLD (the reaper's, which registers it itself) and
// SIGURG (the Go runtime's goroutine preemption); neither is ever forwarded.
var table = [...]struct {
	sig syscall.Signal
	h   Handling
}{
	{syscall.SIGTERM, Early | Forwarded | StartsStop | Fatal},
	{syscall.SIGINT, Early | Forwarded | StartsStop | Fatal},
	{syscall.SIGHUP, Early | Forwarded | Fatal},
	{syscall.SIGQUIT, Early | Forwarded | Fatal},
	{syscall.SIGUSR1, Early | Forwarded},
	{syscall.SIGUSR2, Early | Forwarded},
	{syscall.SIGWINCH, Early | Forwarded},
	{syscall.SIGCONT, Early | Forwarded},
	{syscall.SIGALRM, Early | Forwarded},
	{syscall.SIGPWR, Early | Forwarded},
	{syscall.SIGTSTP, Early | Forwarded | JobStop},
	{syscall.SIGTTIN, Early | Forwarded | JobStop},
	{syscall.SIGTTOU, Early | Forwarded | JobStop},
	// Caught, never forwarded: only so that a write to a closed stderr
	// returns EPIPE instead of killing spotinit (the Go runtime raises
	// SIGPIPE for fds 1 and 2 when nobody is notified for it).
	{syscall.SIGPIPE, 0},
}

// Is reports whether spotinit catches sig and gives it every property in h.
func Is(sig syscall.Signal, h Handling) bool {
	for _, e := range table {
		if e.sig == sig {
			return e.h&h == h
		}
	}
	return false
}

// Caught returns the signals spotinit catches that have every property in
// h (all of them for 0), in the table's order.
func Caught(h Handling) []syscall.Signal {
	var sigs []syscall.Signal
	for _, e := range table {
		if e.h&h == h {
			sigs = append(sigs, e.sig)
		}
	}
	return sigs
}

// notifyList returns the caught signals whose handling satisfies want, as
// Notify wants them.
func notifyList(want func(Handling) bool) []os.Signal {
	var sigs []os.Signal
	for _, e := range table {
		if want(e.h) {
			sigs = append(sigs, e.sig)
		}
	}
	return sigs
}

func isCaught(s os.Signal) bool {
	sig, ok := s.(syscall.Signal)
	return ok && Is(sig, 0)
}

func isStop(s os.Signal) bool {
	sig, ok := s.(syscall.Signal)
	return ok && Is(sig, StartsStop)
}
