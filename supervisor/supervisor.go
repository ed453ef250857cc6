// Package supervisor runs the app as spotinit's child and owns its
// lifecycle: starting, running, stopping (a stop signal or a notice started
// the stop; a deadline is set), killing (the deadline passed; SIGKILL sent)
// and exited, then the wait for the rest of the process tree. Signals, the
// child's exit, interruption notices, hook completions and timers all meet
// in one select in Run, so every state change happens in one place.
//
// It never calls wait4 (the reaper does, and hands over the child's exit),
// never exits the process, and never lets a failed kill, a hook or a log
// write end the run.
//
// The shutdown arithmetic, written out here once (TestDeadlines has a row
// for each formula). The container runtime sends SIGTERM and, StopTimeout
// later, SIGKILL. spotinit keeps KillMargin for itself, so the deadline is
//
//	deadline = first stop signal + StopTimeout - KillMargin
//
// (a later stop signal is forwarded but never moves it), capped by an
// interruption notice's own deadline when one is known, and pulled in, never
// pushed out, by a notice that moves it earlier:
//
//	deadline = min(deadline, notice deadline - KillMargin)
//
// With StopOnNotice a notice starts the stop itself, after the pre-stop
// hooks:
//
//	deadline = min(notice deadline, hooks' end + StopTimeout) - KillMargin
//
// A deadline already past when the stop starts (a late notice) still leaves
// the child a moment:
//
//	deadline = max(deadline, stop start + min(1s, StopTimeout - KillMargin))
//
// At the deadline spotinit sends SIGKILL to what is left, and waits for the
// reaper to report it for at most
//
//	grace after SIGKILL = max(KillMargin/2, 1s)
//
// and exits as soon as it has (with the child's real status), normally
// KillMargin before the runtime (or EC2) would have used force. When the
// child exits on its own before any of this, the rest of the tree gets
// SIGTERM, then SIGKILL and the same grace at
//
//	deadline = min(child's exit + StopTimeout, notice deadline) - KillMargin
//
// The pre-stop hooks leave the child part of the budget when it is still to
// be stopped: those that run before it is signalled (a stop signal without
// PreStopParallel) end by
//
//	hooks' deadline = deadline - reserve(deadline - stop start)
//	reserve(budget) = min(5s, budget/4)
//
// and those a notice starts, with d = notice deadline - KillMargin, by
//
//	hooks' deadline = max(d - reserve(d - notice), notice + 1s)
//
// With ForwardDelay the child's first stop signal waits a while longer, so
// that a load balancer stops sending it traffic first, counted from the
// pre-stop hooks' end when they run before it (else from the stop start,
// PreStopParallel included), and never past the point that leaves the child
// the same reserve as the hooks do:
//
//	child's signal = min(from + ForwardDelay, deadline - reserve(deadline - stop start))
//
// and at once when that is past already. A notice that pulls the deadline
// in pulls this in with it. A second stop signal during the delay ends it:
// the child gets the first one at once, and not the second as well (during
// the hooks a second one is held, as the first is).
//
// Last, ExitMap may replace the child's status (its code or 128+N, 137
// after spotinit's own SIGKILL included) as spotinit's exit status.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spotinit/spotinit/earlysignal"
	"github.com/spotinit/spotinit/hooks"
	"github.com/spotinit/spotinit/internal/interp"
	"github.com/spotinit/spotinit/interruption"
	"github.com/spotinit/spotinit/reaper"
)

// Config says what to run, how to stop it and how to react to notices.
type Config struct {
	// Argv is the child's command line; Argv[0] is looked up in PATH like a
	// shell does.
	Argv []string
	// Env is the child's environment; nil means spotinit's own.
	Env []string
	// StopTimeout is the grace the container runtime gives between its
	// SIGTERM and its SIGKILL.
	StopTimeout time.Duration
	// KillMargin is how long before the end of StopTimeout spotinit sends
	// SIGKILL itself. It must be shorter than StopTimeout.
	KillMargin time.Duration
	// SingleChild forwards signals to the child only, instead of its whole
	// process group.
	SingleChild bool
	// NoWait exits as soon as the child has exited, without giving the rest
	// of the process tree its grace.
	NoWait bool
	// Rewrite maps a received signal to the one forwarded; 0 drops it.
	Rewrite map[syscall.Signal]syscall.Signal
	// Reaper starts the child and the hooks and reports their exits.
	// Required; its Run must be running.
	Reaper *reaper.Reaper
	// Stop and Signals deliver the caught stop signals and the others; nil
	// means earlysignal's channels.
	Stop, Signals <-chan os.Signal
	// Log receives the lifecycle lines; nil discards.
	Log *slog.Logger

	// Notices delivers interruption notices; nil means none.
	Notices <-chan interruption.Notice
	// PreStop are the pre-stop hook commands; the executables in PreStopDir
	// (listed when the hooks run) follow them.
	PreStop    []hooks.Hook
	PreStopDir string
	// OnRebalance are the hooks run once on a rebalance recommendation.
	OnRebalance []hooks.Hook
	// HookTimeout bounds each hook; 30s when zero.
	HookTimeout time.Duration
	// PreStopParallel signals the child at once on a stop signal and runs
	// the pre-stop hooks alongside, instead of first.
	PreStopParallel bool
	// NoticeSignal is sent to the child when a notice arrives; 0: none.
	NoticeSignal syscall.Signal
	// NoticeFile, when set, receives each notice as JSON, written
	// atomically.
	NoticeFile string
	// StopOnNotice starts the stop sequence after the pre-stop hooks when a
	// terminating notice arrives (EC2 without ECS draining).
	StopOnNotice bool
	// Hibernate says what a Spot hibernate notice does.
	Hibernate Hibernate
	// HookOutput receives the hooks' output lines; nil means os.Stderr.
	HookOutput io.Writer
	// ForwardDelay holds the child's first stop signal this long after the
	// pre-stop hooks (after the stop's start when none run before the
	// child), within the bound the package doc gives; 0: no delay. At most
	// MaxForwardDelay(StopTimeout, KillMargin).
	ForwardDelay time.Duration
	// ExitMap replaces the child's exit status (its code, or 128+N when
	// signal N killed it) by another as spotinit's: 143:0 for a JVM that
	// exits 143 on a clean SIGTERM. Each status is mapped once (no chains);
	// 137 from spotinit's own SIGKILL is mapped like any other. Statuses
	// are 0-255.
	ExitMap map[int]int

	// The seams (seams.go); nil means the real thing.
	clock    clock      // nil: the wall clock
	procs    procs      // nil: Reaper
	kern     kernel     // nil: kill(2) and /proc
	runHooks hookRunner // nil: hooks.Run
}

// Result is how a run ended.
type Result struct {
	// Code is spotinit's exit status: the child's code, or 128+N when
	// signal N killed it, after ExitMap.
	Code int
	// Pid is the child's pid.
	Pid int
	// Killed reports that spotinit sent SIGKILL to any process (see
	// Report.Killed).
	Killed bool
	// Hooks are the results of the pre-stop hooks, if they ran.
	Hooks []hooks.Result
	// Report is the stop report's data.
	Report Report
}

// StartError reports that the child could not be started. Code is 127 when
// the command was not found and 126 when it could not be executed, a
// missing #! interpreter or ELF loader included (execve says ENOENT for
// those too).
type StartError struct {
	Code int
	Err  error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

const defaultHookTimeout = 30 * time.Second

// Validate checks the parts of cfg that do not depend on the system.
func (cfg *Config) Validate() error {
	if len(cfg.Argv) == 0 {
		return errors.New("no command given")
	}
	if cfg.StopTimeout <= 0 {
		return fmt.Errorf("stop timeout %s must be positive", cfg.StopTimeout)
	}
	if cfg.KillMargin < 0 {
		return fmt.Errorf("kill margin %s must not be negative", cfg.KillMargin)
	}
	if cfg.KillMargin >= cfg.StopTimeout {
		return fmt.Errorf("kill margin %s must be shorter than the stop timeout %s", cfg.KillMargin, cfg.StopTimeout)
	}
	if cfg.HookTimeout < 0 {
		return fmt.Errorf("hook timeout %s must not be negative", cfg.HookTimeout)
	}
	if cfg.Reaper == nil && cfg.procs == nil {
		return errors.New("no reaper")
	}
	if cfg.ForwardDelay < 0 {
		return fmt.Errorf("forward delay %s must not be negative", cfg.ForwardDelay)
	}
	if m := MaxForwardDelay(cfg.StopTimeout, cfg.KillMargin); cfg.ForwardDelay > m {
		return fmt.Errorf("forward delay %s must be at most %s, which leaves the child %s of the stop timeout %s less the kill margin %s",
			cfg.ForwardDelay, m, reserve(cfg.StopTimeout-cfg.KillMargin), cfg.StopTimeout, cfg.KillMargin)
	}
	for from, to := range cfg.ExitMap {
		if from < 0 || from > 255 || to < 0 || to > 255 {
			return fmt.Errorf("exit map %d:%d: statuses are 0-255", from, to)
		}
	}
	return nil
}

// MaxForwardDelay is the longest ForwardDelay that a stop of a full budget
// (StopTimeout - KillMargin, no hooks) honours: the budget less the child's
// reserve. A longer one would always be cut short.
func MaxForwardDelay(stopTimeout, killMargin time.Duration) time.Duration {
	budget := stopTimeout - killMargin
	return budget - reserve(budget)
}

type state int

const (
	running  state = iota // child alive, no stop yet
	stopping              // stop started, deadline set (the stop signal may wait for the pre-stop hooks)
	killing               // deadline passed, SIGKILL sent
	draining              // child gone, waiting for the rest of the tree
)

// Run starts the child and supervises it until it and, unless NoWait, the
// rest of the process tree are gone. It returns a *StartError when the child
// cannot be started.
func Run(ctx context.Context, cfg Config) (Result, error) {
	s, err := newRun(cfg)
	if err != nil {
		return Result{}, err
	}
	if err := s.start(); err != nil {
		return Result{}, err
	}
	defer s.stopTimer()
	hctx, cancelHooks := context.WithCancel(ctx)
	s.hooksCtx = hctx
	defer s.waitHooks(cancelHooks)
	for !s.done {
		s.step(ctx)
	}
	// Every hook has ended before the report's data is taken, so that it
	// holds their results and no hook logs after it.
	s.stopTimer()
	s.waitHooks(cancelHooks)
	return s.result(), nil
}

// newRun checks cfg and fills in its defaults.
func newRun(cfg Config) (*run, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &run{cfg: cfg, log: cfg.Log, pid1: os.Getpid() == 1,
		clock: cfg.clock, procs: cfg.procs, kern: cfg.kern, runHooks: cfg.runHooks}
	if s.clock == nil {
		s.clock = wallClock{}
	}
	if s.procs == nil {
		s.procs = cfg.Reaper
	}
	if s.kern == nil {
		s.kern = realKernel{}
	}
	if s.runHooks == nil {
		s.runHooks = hooks.Run
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.cfg.Stop == nil {
		s.cfg.Stop = earlysignal.Stop()
	}
	if s.cfg.Signals == nil {
		s.cfg.Signals = earlysignal.Other()
	}
	if s.cfg.HookTimeout == 0 {
		s.cfg.HookTimeout = defaultHookTimeout
	}
	if s.cfg.HookOutput == nil {
		s.cfg.HookOutput = os.Stderr
	}
	if s.cfg.Env == nil {
		s.cfg.Env = os.Environ()
	}
	s.notices = s.cfg.Notices
	return s, nil
}

// run is the state of one supervision; only Run's goroutine touches it.
type run struct {
	cfg      Config
	log      *slog.Logger
	pid1     bool
	clock    clock
	procs    procs
	kern     kernel
	runHooks hookRunner
	notices  <-chan interruption.Notice // nil once the watcher has stopped

	pid     int
	exitC   <-chan reaper.Exit
	started time.Time

	state     state
	stopBegan time.Time // when the stop sequence started
	deadline  time.Time
	timer     timer
	timerC    <-chan time.Time

	// The forward delay (ForwardDelay): the held stop signal goes to the
	// child when delayC fires; delayC is nil when no delay runs.
	delayTimer timer
	delayC     <-chan time.Time
	delayBegan time.Time
	delayUntil time.Time
	delayed    time.Duration // how long the delay held the signal, for the report

	// The notice signal (NoticeSignal) waits while the child would die of
	// it (notice.go): noticeC fires to look again, nil when nothing waits.
	noticeHeldAt time.Time
	noticeTimer  timer
	noticeC      <-chan time.Time
	noticeWait   time.Duration

	// What started the shutdown, for the hooks' environment and the report.
	trigger   string // "SIGTERM", "spot-interruption", … ; "" until something does
	action    string
	triggerAt time.Time
	// triggerEnd is the deadline the trigger gave: the notice's, or the
	// stop deadline of a stop signal.
	triggerEnd time.Time
	// instanceDeadline is the earliest deadline a notice announced.
	instanceDeadline time.Time

	hooksCtx       context.Context
	preStop        hookRun
	rebalance      hookRun
	heldStop       syscall.Signal // stop signal waiting for the pre-stop hooks or the forward delay
	stopAfterHooks bool           // StopOnNotice: stop once the pre-stop hooks end
	waveDue        bool           // the rest of the tree gets SIGTERM once the hooks end

	exit   reaper.Exit
	exited bool
	exitAt time.Time
	killed bool // the child got SIGKILL at the deadline
	// killedOthers counts the other descendants SIGKILLed at a deadline.
	killedOthers int
	// left is the time from the child's exit to the stop deadline, when it
	// exited during the stop sequence (never negative); nil otherwise.
	left *time.Duration
	done bool
}

func (s *run) start() error {
	argv := s.cfg.Argv
	path, err := lookPath(argv[0], s.cfg.Env)
	if err != nil {
		return &StartError{Code: 127, Err: fmt.Errorf("start %q: %w", argv[0], err)}
	}
	attr := &syscall.ProcAttr{
		Env:   s.cfg.Env,
		Files: []uintptr{0, 1, 2},
		Sys:   childAttr(s.cfg.SingleChild, s.log),
	}
	pid, exitC, err := s.procs.Start(path, argv, attr)
	if err != nil {
		code := 126
		if errors.Is(err, syscall.ENOENT) {
			code = 127
			// The program exists but its #! interpreter or ELF loader
			// does not: found, not executable, as a shell says (126).
			if why := interp.Missing(path); why != nil {
				code, err = 126, why
			}
		}
		return &StartError{Code: code, Err: fmt.Errorf("start %q: %w", argv[0], err)}
	}
	s.pid, s.exitC, s.started = pid, exitC, s.clock.Now()
	s.log.Info("child started", "pid", pid, "argv", argv)
	return nil
}

// step waits for the next event and handles it: Run calls it until done.
func (s *run) step(ctx context.Context) {
	var emptyC <-chan struct{}
	if (s.state == draining || s.state == killing && s.exited) && !s.hooksRunning() {
		// While hooks run the tree is not gone even when no process is
		// left (a hook about to fork): their end is heard on its own
		// channel (afterHooks), and an empty tree now would only wake
		// the loop again and again.
		emptyC = s.procs.Empty()
	}
	select {
	case sig := <-s.cfg.Stop:
		s.onSignal(sig)
	case sig := <-s.cfg.Signals:
		s.onSignal(sig)
	case n, ok := <-s.notices:
		if !ok {
			s.notices = nil // the watcher has stopped: nothing more will come
			return
		}
		s.onNotice(n)
	case e := <-s.exitC:
		s.exitC = nil
		s.onChildExit(e)
	case rs := <-s.preStop.done:
		s.onPreStopDone(rs)
	case rs := <-s.rebalance.done:
		s.rebalance.finish(rs)
		s.afterHooks()
	case <-emptyC:
		s.checkTreeGone()
	case <-s.timerC:
		s.onDeadline()
	case <-s.delayC:
		s.onDelayEnd()
	case <-s.noticeC:
		s.noticeC, s.noticeTimer = nil, nil
		s.sendNoticeSignal()
	case <-ctx.Done():
		s.stopDelay()
		s.done = true
	}
}

func (s *run) result() Result {
	rep := s.report()
	return Result{Code: s.exitCode(), Pid: s.pid, Killed: rep.Killed(), Hooks: s.preStop.results, Report: rep}
}

func (s *run) onSignal(got os.Signal) {
	sig, ok := got.(syscall.Signal)
	if !ok || !Forwarded(sig) {
		s.log.Debug("signal not forwarded", "signal", got)
		return
	}
	to := sig
	if r, ok := s.cfg.Rewrite[sig]; ok {
		to = r
	}
	switch {
	case isStop(sig) && s.state == running:
		s.beginStop(SignalName(sig), to, s.clock.Now().Add(s.cfg.StopTimeout-s.cfg.KillMargin))
	case isStop(sig) && s.delayC != nil:
		// A second stop signal: whoever sent it wants the stop now, not
		// after the delay. The child gets the first one, not both: many
		// apps take a second SIGINT as "quit at once".
		s.endDelay("by", SignalName(sig))
	case isStop(sig) && s.heldStop != 0:
		// Still waiting for the pre-stop hooks: the child gets its stop
		// signal when they end, not now.
		s.log.Debug("stop signal held for the pre-stop hooks", "signal", SignalName(sig))
	case to != 0:
		s.forward(to)
	default:
		s.log.Debug("signal dropped by rewrite", "signal", SignalName(sig))
	}
	if isJobStop(to) && !s.pid1 {
		// Stop spotinit too, as dumb-init does, so that a shell running it
		// sees the job stop; SIGCONT to spotinit is forwarded in turn. PID 1
		// cannot stop itself: the kernel drops the signal, so don't ask.
		_ = s.kern.Kill(os.Getpid(), syscall.SIGSTOP)
	}
}

// forward sends sig to the child (or its process group) while it lives, and
// to every remaining descendant after it has exited.
func (s *run) forward(sig syscall.Signal) {
	if s.exited {
		n := len(s.signalDescendants(sig))
		s.log.Debug("forwarded signal to descendants", "signal", SignalName(sig), "count", n)
		return
	}
	var err error
	if !s.cfg.SingleChild {
		err = s.kern.Kill(-s.pid, sig)
		if errors.Is(err, syscall.ESRCH) {
			// The child left its own process group (setpgid/setsid):
			// it still gets the signal.
			err = s.kern.Kill(s.pid, sig)
		}
	} else {
		err = s.kern.Kill(s.pid, sig)
	}
	if err != nil {
		// EPERM (a setuid child) or ESRCH (already gone): nothing to do.
		s.log.Debug("forward failed", "signal", SignalName(sig), "pid", s.pid, "err", err)
		return
	}
	s.log.Debug("forwarded signal", "signal", SignalName(sig), "pid", s.pid)
}

// beginStop starts the stop sequence: why is the stop signal's name or the
// notice kind, to is the signal the child gets (0: none, rewritten away),
// deadline when SIGKILL comes (capped by a notice's deadline). With
// pre-stop hooks still to run or running, and not in parallel mode, the
// child's signal waits for them.
func (s *run) beginStop(why string, to syscall.Signal, deadline time.Time) {
	now := s.clock.Now()
	s.state = stopping
	s.stopBegan = now
	// A notice deadline already past still leaves the child a moment.
	deadline = atLeast(s.capDeadline(deadline), now.Add(min(time.Second, s.cfg.StopTimeout-s.cfg.KillMargin)))
	hold := !s.cfg.PreStopParallel && (s.preStop.running() || !s.preStop.started && s.hasPreStop())
	switch {
	case hold:
		s.heldStop = held(to)
	case s.cfg.ForwardDelay > 0:
		s.heldStop = held(to) // the delay starts below, once the deadline is set
	default:
		s.signalStop(to) // first: the child's latency matters, the timer's does not
	}
	s.setDeadline(deadline)
	if s.trigger == "" {
		s.trigger, s.action, s.triggerAt, s.triggerEnd = why, why, now, s.deadline
	}
	s.log.Info("stop sequence started", "trigger", why, "pid", s.pid,
		"stop_timeout", s.cfg.StopTimeout, "kill_margin", s.cfg.KillMargin,
		"deadline", s.deadline, "hooks_first", hold)
	if !hold && s.heldStop != 0 {
		s.startDelay(now, s.deadline)
	}
	if !s.preStop.started && s.hasPreStop() {
		hd := s.deadline
		if hold {
			hd = hd.Add(-reserve(hd.Sub(now)))
		}
		s.startPreStop(hookEvent{event: "stop-signal", action: why, at: now, deadline: s.deadline}, hd)
	}
}

// atLeast returns the later of t and floor.
func atLeast(t, floor time.Time) time.Time {
	if t.Before(floor) {
		return floor
	}
	return t
}

// signalStop sends the stop signal to the child and then SIGCONT, so that a
// stopped child can act on it.
func (s *run) signalStop(to syscall.Signal) {
	if to > 0 {
		s.forward(to)
	}
	s.forward(syscall.SIGCONT)
}

// reserve is the part of a stop budget kept for the child when pre-stop
// hooks run before it is signalled.
func reserve(budget time.Duration) time.Duration {
	return min(5*time.Second, budget/4)
}

// capDeadline caps t by the deadline a notice announced.
func (s *run) capDeadline(t time.Time) time.Time {
	if !s.instanceDeadline.IsZero() {
		if c := s.instanceDeadline.Add(-s.cfg.KillMargin); c.Before(t) {
			return c
		}
	}
	return t
}

// setDeadline sets the stop deadline and its timer; a forward delay
// running ends by the new deadline's bound.
func (s *run) setDeadline(t time.Time) {
	s.deadline = t
	s.setTimer(t)
	if s.delayC != nil {
		if end := s.delayBound(t); end.Before(s.delayUntil) {
			s.armDelay(end)
		}
	}
}

func (s *run) setTimer(t time.Time) {
	s.stopTimer()
	s.timer = s.clock.NewTimer(t.Sub(s.clock.Now()))
	s.timerC = s.timer.C()
}

func (s *run) stopTimer() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer, s.timerC = nil, nil
	}
}

func (s *run) onDeadline() {
	s.stopTimer()
	s.stopDelay() // ended by its bound before the deadline; never left running
	switch {
	case s.state == stopping:
		waited := s.clock.Now().Sub(s.stopBegan).Round(time.Millisecond)
		s.killedOthers += s.killTree()
		s.killed = true
		s.state = killing
		s.log.Warn("deadline reached, sent SIGKILL", "pid", s.pid, "waited", waited)
		s.graceAfterKill()
	case s.state == draining:
		n := s.killTree()
		s.killedOthers += n
		s.state = killing
		s.log.Warn("deadline reached, killed descendants", "count", n)
		s.graceAfterKill()
	default: // killing: the grace after SIGKILL is over
		if !s.exited {
			s.takeExit()
		}
		switch {
		case !s.exited:
			// Not even a zombie: the kernel has not let it die, which a
			// process in uninterruptible sleep (state D) can do for ever.
			s.log.Error("child did not exit after SIGKILL", "pid", s.pid, "state", stateName(s.kern.State(s.pid)))
			s.exit = reaper.Exit{Pid: s.pid, Status: syscall.WaitStatus(syscall.SIGKILL)}
		case !s.done:
			s.log.Warn("descendants left after SIGKILL", "count", len(s.kern.Descendants()))
		}
		s.done = true
	}
}

// killGrace is the floor of the grace after SIGKILL, whatever the margin. A
// SIGKILLed process is normally reported within a millisecond; freeing a
// large memory takes longer (about 30 ms a GiB on our 2-core test machines:
// 240-300 ms for 8 GiB), so a second covers some 30 GiB. It is KillMargin/2
// at the default margin, and the wait ends at the report: only a process
// that really did not die waits it out.
const killGrace = time.Second

// graceAfterKill bounds the wait for SIGKILLed processes to be reaped (the
// package doc has the formula).
func (s *run) graceAfterKill() {
	s.setTimer(s.clock.Now().Add(max(s.cfg.KillMargin/2, killGrace)))
}

// takeExit takes the child's exit if the reaper has it at the end of the
// grace: it may wait in exitC beside the timer that just fired, or the
// child may be a zombie whose SIGCHLD the reaper has not handled yet.
func (s *run) takeExit() {
	s.procs.Reap()
	select {
	case e := <-s.exitC:
		s.exitC = nil
		s.onChildExit(e)
	default:
	}
}

// killTree sends SIGKILL to the child's group and every descendant (hooks
// included), scanning again while new processes keep turning up (a fork in
// flight escapes one scan, not a second one after its parent is dead). It
// returns how many descendants other than the child it signalled, each
// counted once.
func (s *run) killTree() int {
	killed := make(map[int]bool)
	if !s.exited {
		// What lives beside the child now dies with its group, counted
		// first: a scan after the group's SIGKILL may or may not still
		// see it.
		for _, p := range s.kern.Descendants() {
			if p != s.pid {
				killed[p] = true
			}
		}
		_ = s.kern.Kill(-s.pid, syscall.SIGKILL)
		_ = s.kern.Kill(s.pid, syscall.SIGKILL)
	}
	// A process SIGKILLed in one pass may still be listed in the next (it
	// dies asynchronously): count each pid once, and scan again only while
	// new ones turn up.
	for pass := 0; pass < 4; pass++ {
		fresh := 0
		for _, p := range s.signalDescendants(syscall.SIGKILL) {
			if !killed[p] {
				killed[p] = true
				fresh++
			}
		}
		if fresh == 0 || s.pid1 {
			break
		}
	}
	return len(killed)
}

func (s *run) onChildExit(e reaper.Exit) {
	s.exit, s.exited, s.exitAt = e, true, s.clock.Now()
	if s.state == stopping {
		// Before the deadline by the state, though a late timer can leave
		// the clock past it: the report says 0 then.
		left := max(s.deadline.Sub(s.exitAt), 0)
		s.left = &left
	}
	if s.delayTimer != nil {
		// The child ended during the forward delay: it was held this long.
		s.delayed = s.exitAt.Sub(s.delayBegan).Round(time.Millisecond)
	}
	s.heldStop = 0 // nobody left to get it
	s.stopDelay()
	s.dropNoticeSignal()
	ran := s.exitAt.Sub(s.started).Round(time.Millisecond)
	if e.Status.Signaled() {
		s.log.Info("child exited", "pid", e.Pid, "signal", SignalName(e.Status.Signal()), "code", e.Code(), "ran", ran)
	} else {
		s.log.Info("child exited", "pid", e.Pid, "code", e.Code(), "ran", ran)
	}
	if s.state == killing {
		// Killed at the deadline: whatever else is left got SIGKILL too.
		s.checkTreeGone()
		return
	}
	if s.cfg.NoWait {
		s.done = true
		return
	}
	if !s.procs.Reap() && !s.hooksRunning() {
		// Nothing left. Hooks still running count as the tree (one may
		// not have forked yet): the run waits for them below.
		s.done = true
		return
	}
	s.state = draining
	if s.deadline.IsZero() {
		s.setDeadline(s.capDeadline(s.exitAt.Add(s.cfg.StopTimeout - s.cfg.KillMargin)))
	}
	if s.hooksRunning() {
		// The hooks are descendants too, with their own time limits: the
		// rest of the tree gets its SIGTERM when they have ended.
		s.waveDue = true
		return
	}
	s.termWave()
}

// termWave sends SIGTERM (and SIGCONT) to every descendant left after the
// child has exited.
func (s *run) termWave() {
	s.waveDue = false
	n := len(s.signalDescendants(syscall.SIGTERM))
	s.signalDescendants(syscall.SIGCONT)
	if n == 0 && !s.procs.Reap() {
		s.log.Info("descendants gone")
		s.done = true
		return
	}
	s.log.Info("waiting for descendants", "count", n, "deadline", s.deadline)
}

// checkTreeGone ends the run when nothing is left: no child, no
// descendant, no hook.
func (s *run) checkTreeGone() {
	if s.procs.Reap() || s.hooksRunning() {
		return
	}
	if s.state == draining {
		s.log.Info("descendants gone")
	}
	s.done = true
}

// lookPath finds file like a shell: names with a slash are used as they
// are; others are searched in PATH from env, or in the usual default path
// when PATH is unset.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path, ok := "", false
	for _, kv := range env {
		if v, found := strings.CutPrefix(kv, "PATH="); found {
			path, ok = v, true
		}
	}
	if !ok {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "." // an empty PATH element means the current directory
		}
		p := filepath.Join(dir, file)
		if isExecutable(p) {
			if !filepath.IsAbs(p) && !strings.HasPrefix(p, ".") {
				p = "./" + p
			}
			return p, nil
		}
	}
	return "", errNotFound
}

var errNotFound = errors.New("executable file not found in $PATH")

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
