package reaper

import (
	"runtime"
	"sync"
	"syscall"
)

// Linux sends a process's parent-death signal (PR_SET_PDEATHSIG, which
// syscall.SysProcAttr.Pdeathsig sets in the new process) when the thread
// that forked it exits, not when the process does (golang/go#27505). The Go
// runtime ends a thread whenever a goroutine locked to it returns, so a
// fork from an arbitrary goroutine could hand the child its "spotinit died"
// signal while spotinit lives on. Every fork therefore happens on one OS
// thread that lives exactly as long as spotinit: the goroutine below locks
// itself to its thread and never unlocks or returns.
//
// This is package state because the thread is a property of the process,
// not of a Reaper: there is one for the life of the process, however many
// Reapers (tests make several) ask it to fork.
var forker struct {
	once sync.Once
	reqs chan forkReq
}

// forkReq asks the fork thread to fork and exec; the answer comes on done.
type forkReq struct {
	path string
	argv []string
	attr *syscall.ProcAttr
	done chan<- forkResult
}

type forkResult struct {
	pid int
	err error
}

// startForker starts the fork thread, once. New calls it so that the thread
// exists before the first Start needs it.
func startForker() {
	forker.once.Do(func() {
		forker.reqs = make(chan forkReq)
		go forkLoop(forker.reqs)
	})
}

// forkLoop is the fork thread. It owns no state and never ends: its end
// would be the end of its thread, and so the parent-death signal of every
// process it started.
func forkLoop(reqs <-chan forkReq) {
	runtime.LockOSThread() // never unlocked: see the comment on forker
	for req := range reqs {
		pid, err := syscall.ForkExec(req.path, req.argv, req.attr)
		req.done <- forkResult{pid, err}
	}
}

// forkExec is syscall.ForkExec, run on the fork thread.
func forkExec(path string, argv []string, attr *syscall.ProcAttr) (int, error) {
	startForker()
	done := make(chan forkResult, 1)
	forker.reqs <- forkReq{path: path, argv: argv, attr: attr, done: done}
	r := <-done
	return r.pid, r.err
}

// withDeathSignal returns attr with the parent-death signal sig set in its
// SysProcAttr, unless sig is 0 or the caller set one; attr itself is never
// changed.
func withDeathSignal(attr *syscall.ProcAttr, sig syscall.Signal) *syscall.ProcAttr {
	if sig == 0 || attr.Sys != nil && attr.Sys.Pdeathsig != 0 {
		return attr
	}
	a := *attr
	sys := syscall.SysProcAttr{}
	if attr.Sys != nil {
		sys = *attr.Sys
	}
	sys.Pdeathsig = sig
	a.Sys = &sys
	return &a
}
