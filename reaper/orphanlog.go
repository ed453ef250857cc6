package reaper

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// logOrphan writes the debug line for one reaped orphan, so that "something
// keeps dying in my container" is answerable (tini warns the same with -w):
// its pid and exactly how it ended, as the child's own line says it: the
// signal's name and code 128+N ("core" when it dumped one), or its exit
// code.
func (r *Reaper) logOrphan(e Exit) {
	if e.Status.Signaled() {
		args := []any{"pid", e.Pid, "signal", signalName(e.Status.Signal()), "code", e.Code()}
		if e.Status.CoreDump() {
			args = append(args, "core", true)
		}
		r.log.Debug("reaped orphan", args...)
		return
	}
	r.log.Debug("reaped orphan", "pid", e.Pid, "code", e.Code())
}

// signalName returns the conventional name of sig ("SIGKILL"), or its
// number.
func signalName(sig unix.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return strconv.Itoa(int(sig))
}
