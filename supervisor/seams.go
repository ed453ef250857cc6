package supervisor

import (
	"context"
	"syscall"
	"time"

	"github.com/spotinit/spotinit/hooks"
	"github.com/spotinit/spotinit/reaper"
)

// The supervisor reaches the system through four seams, so that its tests
// run the loop on a fake clock, without processes (deadline_test.go). Each
// is an unexported Config field; the zero value is the real thing.

// clock is the supervisor's source of time, in the style of
// k8s.io/utils/clock: the wall clock here, a fake that fires timers when a
// test moves it in the tests.
type clock interface {
	Now() time.Time
	NewTimer(d time.Duration) timer
}

// timer is the part of a *time.Timer the loop uses.
type timer interface {
	C() <-chan time.Time
	Stop() bool
}

type wallClock struct{}

func (wallClock) Now() time.Time                 { return time.Now() }
func (wallClock) NewTimer(d time.Duration) timer { return wallTimer{time.NewTimer(d)} }

type wallTimer struct{ *time.Timer }

func (t wallTimer) C() <-chan time.Time { return t.Timer.C }

// procs starts the child and reports its exit and the tree's: containerd's
// Monitor, in small. *reaper.Reaper is the real one.
type procs interface {
	// Start forks and execs path; the channel receives the exit once.
	Start(path string, argv []string, attr *syscall.ProcAttr) (int, <-chan reaper.Exit, error)
	// Reap collects exited children and reports whether any remains.
	Reap() bool
	// Empty receives (coalesced) when a reap found no child left.
	Empty() <-chan struct{}
}

// kernel is what the supervisor asks of the kernel directly: signals to the
// child and the tree, and the process tree as /proc shows it.
type kernel interface {
	// Kill is kill(2).
	Kill(pid int, sig syscall.Signal) error
	// Descendants returns spotinit's living descendants (see descendants).
	Descendants() []int
	// State returns the state letter of pid in /proc/PID/stat ("D":
	// uninterruptible sleep); "" when there is no such process.
	State(pid int) string
	// Handles reports whether pid catches or ignores sig; ok is false
	// when that cannot be told (see signalHandled).
	Handles(pid int, sig syscall.Signal) (handled, ok bool)
}

type realKernel struct{}

func (realKernel) Kill(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
func (realKernel) Descendants() []int                     { return descendants() }
func (realKernel) State(pid int) string                   { return procState(pid) }
func (realKernel) Handles(pid int, sig syscall.Signal) (bool, bool) {
	return signalHandled(pid, sig)
}

// hookRunner runs a hook list; hooks.Run is the real one.
type hookRunner func(ctx context.Context, cfg hooks.Config, list []hooks.Hook, deadline time.Time) []hooks.Result
