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
	reqs chan func()
}

// startForker starts the fork thread, once. New calls it so that the thread
// exists before the first Start needs it.
func startForker() {
	forker.once.Do(func() {
		forker.reqs = make(chan func())
		go forkLoop(forker.reqs)
	})
}

// forkLoop is the fork thread. It owns no state and never ends: its end
// would be the end of its thread, and so the parent-death signal of every
// process it started.
func forkLoop(reqs <-chan func()) {
	runtime.LockOSThread() // never unlocked: see the comment on forker
	for f := range reqs {
		f()
	}
}

// OnForkThread runs f on the fork thread, the one OS thread that lives as
// long as spotinit, and returns when f has. It is for what the kernel keeps
// per thread and must last: spotinit's own parent-death signal
// (PR_SET_PDEATHSIG applies to the calling thread only, and is lost when
// that thread ends). f must not block.
func OnForkThread(f func()) {
	startForker()
	done := make(chan struct{})
	forker.reqs <- func() { defer close(done); f() }
	<-done
}

// forkExec is syscall.ForkExec, run on the fork thread.
func forkExec(path string, argv []string, attr *syscall.ProcAttr) (pid int, err error) {
	OnForkThread(func() { pid, err = syscall.ForkExec(path, argv, attr) })
	return pid, err
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
