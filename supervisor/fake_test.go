package supervisor

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spotinit/spotinit/hooks"
	"github.com/spotinit/spotinit/interruption"
	"github.com/spotinit/spotinit/reaper"
)

// fakeClock moves only when a test moves it, in the style of
// k8s.io/utils/clock/testing's FakeClock: moving it fires every live timer
// whose time has come, and a timer set for now or earlier fires at once, as
// time.NewTimer's does.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer // live: not fired, not stopped
}

type fakeTimer struct {
	clock *fakeClock
	at    time.Time
	c     chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, at: c.now.Add(d), c: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	c.fire()
	return t
}

// set moves the clock to t (never back) and fires the timers due by then.
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	c.fire()
}

func (c *fakeClock) fire() {
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if t.at.After(c.now) {
			return false
		}
		t.c <- c.now
		return true
	})
}

// next returns the time of the earliest live timer.
func (c *fakeClock) next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var at time.Time
	for _, t := range c.timers {
		if at.IsZero() || t.at.Before(at) {
			at = t.at
		}
	}
	return at, !at.IsZero()
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.timers)
	c.timers = slices.DeleteFunc(c.timers, func(u *fakeTimer) bool { return u == t })
	return len(c.timers) < n
}

// fakeProc is one process of the fake tree: how it reacts to SIGTERM and to
// SIGKILL.
type fakeProc struct {
	name   string
	pid    int
	onTerm string // "exit": dies from it; "" ignores it
	// onKill: "" dies at once and the reaper reports it; "zombie" dies, but
	// only the next reap reports it (its SIGCHLD is late); "stuck" stays
	// in uninterruptible sleep.
	onKill string
	state  string // /proc's letter: "S" alive, "D" stuck, "Z" zombie; "" gone
	status syscall.WaitStatus
}

// world is a fake process tree under the supervisor: the child (pid 100,
// leading group 100) and other descendants. It is the supervisor's procs
// and kernel, and runs its hooks; it records what each process received,
// with the fake time.
type world struct {
	clock *fakeClock
	t0    time.Time
	child *fakeProc
	desc  []*fakeProc
	exitC chan reaper.Exit
	empty chan struct{}
	got   []string // "38s child SIGKILL"

	hooksEnd chan struct{} // a send ends the running hook list

	mu    sync.Mutex // guards hooks, written by the hooks' goroutine
	hooks []string   // each hook run's deadline, "33s" or "none"

	unhandled map[syscall.Signal]bool // signals the child neither catches nor ignores; guarded by mu
}

func (w *world) since(t time.Time) string { return t.Sub(w.t0).String() }

func (w *world) procs() []*fakeProc { return append([]*fakeProc{w.child}, w.desc...) }

func (w *world) Start(path string, argv []string, attr *syscall.ProcAttr) (int, <-chan reaper.Exit, error) {
	w.child.state = "S"
	return w.child.pid, w.exitC, nil
}

func (w *world) Reap() bool {
	left := false
	for _, p := range w.procs() {
		if p.state == "Z" {
			w.gone(p)
		}
		left = left || p.state != ""
	}
	if !left {
		w.signalEmpty()
	}
	return left
}

func (w *world) Empty() <-chan struct{} { return w.empty }

func (w *world) signalEmpty() {
	select {
	case w.empty <- struct{}{}:
	default:
	}
}

func (w *world) Kill(pid int, sig syscall.Signal) error {
	var to []*fakeProc
	switch {
	case pid == os.Getpid():
		w.got = append(w.got, w.since(w.clock.Now())+" self "+SignalName(sig))
		return nil
	case pid == -1:
		to = w.procs()
	case pid == w.child.pid || pid == -w.child.pid:
		to = []*fakeProc{w.child}
	default:
		for _, p := range w.desc {
			if p.pid == pid {
				to = append(to, p)
			}
		}
	}
	to = slices.DeleteFunc(to, func(p *fakeProc) bool { return p.state == "" || p.state == "Z" })
	if len(to) == 0 {
		return syscall.ESRCH
	}
	for _, p := range to {
		w.got = append(w.got, w.since(w.clock.Now())+" "+p.name+" "+SignalName(sig))
		switch {
		case sig == syscall.SIGKILL && p.onKill == "stuck":
			p.state = "D"
		case sig == syscall.SIGKILL && p.onKill == "zombie":
			p.state, p.status = "Z", syscall.WaitStatus(sig)
		case sig == syscall.SIGKILL, p.onTerm == "exit" && (sig == syscall.SIGTERM || sig == syscall.SIGINT):
			p.status = syscall.WaitStatus(sig)
			w.gone(p)
		}
	}
	return nil
}

// gone ends p: the reaper reports the child's exit, and the tree's end.
func (w *world) gone(p *fakeProc) {
	p.state = ""
	if p == w.child {
		w.exitC <- reaper.Exit{Pid: p.pid, Status: p.status}
	}
	if !slices.ContainsFunc(w.procs(), func(p *fakeProc) bool { return p.state != "" }) {
		w.signalEmpty()
	}
}

func (w *world) Descendants() []int {
	var pids []int
	for _, p := range w.procs() {
		if p.state == "S" || p.state == "D" {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

// Handles: the fake child handles every signal unless the test says
// otherwise (w.unhandled).
func (w *world) Handles(pid int, sig syscall.Signal) (bool, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.unhandled[sig], true
}

func (w *world) State(pid int) string {
	for _, p := range w.procs() {
		if p.pid == pid {
			return p.state
		}
	}
	return ""
}

func (w *world) runHooks(ctx context.Context, cfg hooks.Config, list []hooks.Hook, deadline time.Time) []hooks.Result {
	d := "none"
	if !deadline.IsZero() {
		d = w.since(deadline)
	}
	w.mu.Lock()
	w.hooks = append(w.hooks, d)
	w.mu.Unlock()
	select {
	case <-w.hooksEnd:
	case <-ctx.Done():
	}
	rs := make([]hooks.Result, len(list))
	for i, h := range list {
		rs[i] = hooks.Result{Name: h.Name}
	}
	return rs
}

// harness runs the supervisor's loop in the test's goroutine, one event at
// a time, against the fake clock and the fake world: nothing sleeps, and
// the order of events is the script's.
type harness struct {
	t       *testing.T
	ctx     context.Context
	w       *world
	clock   *fakeClock
	s       *run
	stop    chan os.Signal
	other   chan os.Signal
	notices chan interruption.Notice
	log     bytes.Buffer
	end     time.Duration // when the run ended

	cancelHooks context.CancelFunc
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newHarness(t *testing.T, cfg Config, child fakeProc, desc ...fakeProc) *harness {
	t.Helper()
	// Bounds a loop that waits for an event the script never sends: the
	// test then fails instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	clk := &fakeClock{now: t0}
	h := &harness{t: t, ctx: ctx, clock: clk,
		stop: make(chan os.Signal, 16), other: make(chan os.Signal, 16), notices: make(chan interruption.Notice, 16)}
	child.name, child.pid = "child", 100
	h.w = &world{clock: clk, t0: t0, child: &child, exitC: make(chan reaper.Exit, 1),
		empty: make(chan struct{}, 1), hooksEnd: make(chan struct{})}
	for i, d := range desc {
		d.pid, d.state = 101+i, "S"
		h.w.desc = append(h.w.desc, &d)
	}
	cfg.Argv = []string{"/app"}
	cfg.Env = []string{}
	cfg.Stop, cfg.Signals, cfg.Notices = h.stop, h.other, h.notices
	cfg.Log = slog.New(slog.NewTextHandler(&h.log, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // the wall clock's: meaningless here
			}
			return a
		}}))
	cfg.clock, cfg.procs, cfg.kern, cfg.runHooks = clk, h.w, h.w, h.w.runHooks
	s, err := newRun(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	s.hooksCtx, h.cancelHooks = context.WithCancel(ctx)
	h.s = s
	return h
}

func (h *harness) at(d time.Duration) time.Time { return t0.Add(d) }

// step lets the loop handle one event.
func (h *harness) step() {
	h.t.Helper()
	h.s.step(h.ctx)
	if h.ctx.Err() != nil {
		h.t.Fatalf("at %s the loop waited for an event that never came; log:\n%s", h.w.since(h.clock.Now()), h.log.String())
	}
}

// settle lets the loop handle every event already waiting, as it would
// before sleeping again.
func (h *harness) settle() {
	h.t.Helper()
	for !h.s.done && h.ready() {
		h.step()
	}
}

func (h *harness) ready() bool {
	s := h.s
	if len(h.stop)+len(h.other)+len(h.notices)+len(s.exitC)+len(s.timerC)+len(s.delayC)+len(s.preStop.done)+len(s.rebalance.done) > 0 {
		return true
	}
	emptyWatched := (s.state == draining || s.state == killing && s.exited) && !s.hooksRunning()
	return emptyWatched && len(h.w.empty) > 0
}

// advance moves the clock to d after the start, timer by timer, letting
// the loop handle each one as it fires.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.settle()
	for !h.s.done {
		next, ok := h.clock.next()
		if !ok || next.After(h.at(d)) {
			break
		}
		h.clock.set(next)
		h.settle()
	}
	h.clock.set(h.at(d))
}

// runOut lets time pass until the run is over, then cleans up as Run does.
func (h *harness) runOut() Result {
	h.t.Helper()
	for i := 0; !h.s.done; i++ {
		h.settle()
		if h.s.done {
			break
		}
		next, ok := h.clock.next()
		if !ok || i > 100 {
			h.t.Fatalf("at %s the run is not over and no timer is set; log:\n%s", h.w.since(h.clock.Now()), h.log.String())
		}
		h.clock.set(next)
	}
	h.end = h.clock.Now().Sub(t0)
	h.s.stopTimer()
	h.s.waitHooks(h.cancelHooks)
	return h.s.result()
}

// event is one step of a scenario, at a time counted from the child's start.
type event struct {
	at time.Duration
	do func(h *harness)
}

// sigAt: spotinit receives sig.
func sigAt(at time.Duration, sig syscall.Signal) event {
	return event{at, func(h *harness) {
		if isStop(sig) {
			h.stop <- sig
		} else {
			h.other <- sig
		}
	}}
}

// notice: the watcher delivers a Spot termination notice whose deadline is
// deadline after the start (Update: a repeat with an earlier deadline).
func notice(at, deadline time.Duration) event {
	return event{at, func(h *harness) {
		h.notices <- interruption.Notice{Kind: interruption.Spot, Action: "terminate", ID: "spot/terminate",
			Time: h.at(at), Deadline: h.at(deadline), Seen: h.at(at)}
	}}
}

func update(at, deadline time.Duration) event {
	return event{at, func(h *harness) {
		h.notices <- interruption.Notice{Kind: interruption.Spot, Action: "terminate", ID: "spot/terminate",
			Time: h.at(at), Deadline: h.at(deadline), Seen: h.at(at), Update: true}
	}}
}

// exits: the child exits on its own with code.
func exits(at time.Duration, code int) event {
	return event{at, func(h *harness) {
		h.w.child.status = syscall.WaitStatus(code << 8)
		h.w.gone(h.w.child)
	}}
}

// hooksEnd: the running hook list ends.
func hooksEnd(at time.Duration) event {
	return event{at, func(h *harness) {
		select {
		case h.w.hooksEnd <- struct{}{}:
		case <-h.ctx.Done():
			h.t.Fatalf("no hooks running at %s", at)
		}
		h.step() // the loop hears of it
	}}
}

// reaped: the zombie child is reaped (its SIGCHLD came at last).
func reaped(at time.Duration) event {
	return event{at, func(h *harness) { h.w.Reap() }}
}

func (h *harness) play(events []event) {
	h.t.Helper()
	for _, e := range events {
		h.advance(e.at)
		if h.s.done {
			h.t.Fatalf("the run ended before the event at %s", e.at)
		}
		e.do(h)
		h.settle()
	}
}

// received lists what the process named who received, as "38s SIGKILL".
func (h *harness) received(who string) []string {
	var out []string
	for _, g := range h.w.got {
		at, rest, _ := strings.Cut(g, " ")
		name, sig, _ := strings.Cut(rest, " ")
		if name == who {
			out = append(out, at+" "+sig)
		}
	}
	return out
}
