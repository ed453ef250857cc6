// Package reaper is the only place in spotinit that calls wait4. It starts
// every process spotinit runs (the app, hooks), hands each one's exit status
// to whoever started it, and reaps every other child that ends up with
// spotinit as its parent: orphans reparented to PID 1, or to spotinit as a
// child subreaper when it is not PID 1.
//
// It must never let any other code wait for a child: a wait4(-1) loop beside
// os/exec's Wait steals exit statuses (Wait then fails with ECHILD). Processes
// are therefore started here, with their subscription in place before the
// fork returns, and never with exec.Cmd.
package reaper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is how one process ended.
type Exit struct {
	Pid    int
	Status syscall.WaitStatus
}

// Code is the exit status a shell would report: the process's own code, or
// 128+N when signal N killed it.
func (e Exit) Code() int {
	if e.Status.Signaled() {
		return 128 + int(e.Status.Signal())
	}
	return e.Status.ExitStatus()
}

// Reaper owns wait4 for the whole process. The zero value is not usable; call
// New.
type Reaper struct {
	log *slog.Logger
	// forkAround wraps each fork (see Config.ForkAround).
	forkAround func(func())
	// deathSignal is every started process's parent-death signal (see
	// Config.DeathSignal).
	deathSignal syscall.Signal

	// mu is held across fork+subscribe and across wait4+dispatch, so no exit
	// can be reaped between a fork and its subscription.
	mu   sync.Mutex
	subs map[int]chan Exit

	chld    chan os.Signal
	empty   chan struct{}
	orphans atomic.Uint64
}

// Config configures a Reaper.
type Config struct {
	// Log receives debug lines for reaped orphans; nil discards.
	Log *slog.Logger
	// ForkAround, if set, is called with each fork and must call it exactly
	// once: spotinit uses it to let children inherit the signal dispositions
	// spotinit itself was started with.
	ForkAround func(fork func())
	// DeathSignal, if not 0, is the signal every process started here
	// receives when spotinit dies (PR_SET_PDEATHSIG), unless its
	// SysProcAttr sets one: the app and the hooks are not left running
	// unsupervised after spotinit is SIGKILLed. It goes to the started
	// process only, not to its process group or descendants, and the
	// kernel clears it when that process execs a set-user-ID or
	// set-group-ID program (or one with file capabilities). Every fork
	// happens on one thread that lives as long as spotinit (forker.go), so
	// it never fires while spotinit lives. As PID 1 it is harmless and moot:
	// the kernel kills the whole namespace when PID 1 dies.
	DeathSignal syscall.Signal
}

// New makes the Reaper. When spotinit is not PID 1
// it also registers as a child subreaper so that orphaned descendants come to
// it; failure to do so is returned along with a usable Reaper (orphans then
// go to the real init, which is not fatal to the app).
func New(cfg Config) (*Reaper, error) {
	r := &Reaper{
		log:         cfg.Log,
		forkAround:  cfg.ForkAround,
		deathSignal: cfg.DeathSignal,
		subs:        make(map[int]chan Exit),
		chld:        make(chan os.Signal, 1),
		empty:       make(chan struct{}, 1),
	}
	startForker() // the fork thread is ready before the first Start
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.forkAround == nil {
		r.forkAround = func(f func()) { f() }
	}
	var err error
	if os.Getpid() != 1 {
		if e := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); e != nil {
			err = fmt.Errorf("become child subreaper: %w", e)
		}
	}
	return r, err
}

// coalesce is how long Run lets exits gather after a drain that reaped
// something, before it drains again. Every wait4 that finds no zombie walks
// the list of spotinit's live children in the kernel, and every wake-up
// costs the Go runtime a few thread switches, so when orphans exit one
// after another (a shell loop, a CI job, a burst of thousands) a drain per
// exit costs many times a drain per batch. The first exit after a quiet
// spell is still reaped at once; a later one waits at most this long.
const coalesce = time.Millisecond

// Run reaps on every SIGCHLD until ctx is done. Exactly one Run must be
// active for exits to be delivered.
func (r *Reaper) Run(ctx context.Context) {
	// SIGCHLDs coalesce: one pending is enough, every wake-up drains all.
	// Registering here, not in New, keeps the Notify round trip with the
	// runtime's signal thread off the path to the child's start; a child
	// that ends before it is caught by the first Reap below.
	signal.Notify(r.chld, syscall.SIGCHLD)
	defer signal.Stop(r.chld)
	r.Reap()
	hold := time.NewTimer(coalesce)
	defer hold.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.chld:
		}
		if n, _ := r.reap(); n == 0 {
			continue
		}
		// Exits are coming in: let the next ones gather. A SIGCHLD that
		// arrives meanwhile waits in r.chld, so none is missed.
		hold.Reset(coalesce)
		select {
		case <-ctx.Done():
			return
		case <-hold.C:
		}
	}
}

// Start forks and execs path with argv and attr, and returns the new pid and
// a channel that receives its Exit exactly once. The subscription exists
// before any wait4 can see the process. The new process gets exactly the
// descriptors in attr.Files: any that spotinit inherited without
// close-on-exec are closed in it. It is forked on the fork thread
// (forker.go), with the Reaper's DeathSignal unless attr sets one.
func (r *Reaper) Start(path string, argv []string, attr *syscall.ProcAttr) (int, <-chan Exit, error) {
	var (
		pid int
		err error
	)
	a := *withDeathSignal(attr, r.deathSignal)
	a.Files = closeInherited(attr.Files)
	attr = &a
	ch := make(chan Exit, 1)
	r.mu.Lock()
	r.forkAround(func() { pid, err = forkExec(path, argv, attr) })
	if err == nil {
		r.subs[pid] = ch
	}
	r.mu.Unlock()
	if err != nil {
		return 0, nil, err
	}
	return pid, ch, nil
}

// Reap collects every child that has exited, delivering subscribed exits and
// counting the rest as orphans, and reports whether any child remains.
func (r *Reaper) Reap() (children bool) {
	_, children = r.reap()
	return children
}

// reap is Reap that also returns how many processes it reaped.
func (r *Reaper) reap() (n int, children bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		// __WALL: also reap children whose exit signal is not SIGCHLD
		// (clone()d by some runtimes), which would otherwise stay zombies.
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG|unix.WALL, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.ECHILD):
			// No children at all: tell whoever waits for the tree to empty.
			select {
			case r.empty <- struct{}{}:
			default:
			}
			return n, false
		case err != nil:
			r.log.Warn("wait4 failed", "err", err)
			return n, true
		case pid == 0:
			return n, true // children remain, none has exited
		}
		n++
		e := Exit{Pid: pid, Status: ws}
		if ch, ok := r.subs[pid]; ok {
			delete(r.subs, pid)
			ch <- e // buffered and used once: never blocks
			continue
		}
		r.orphans.Add(1)
		if r.log.Enabled(context.Background(), slog.LevelDebug) {
			r.logOrphan(e)
		}
	}
}

// Empty receives a value (coalesced) whenever a reap finds that spotinit has
// no children left. It may be stale: confirm with Reap.
func (r *Reaper) Empty() <-chan struct{} { return r.empty }

// Orphans returns how many processes were reaped that nobody had started
// through Start.
func (r *Reaper) Orphans() uint64 { return r.orphans.Load() }
