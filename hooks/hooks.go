// Package hooks runs hook commands (pre-stop and on-rebalance) one after
// another within a time budget. Each hook is started through the reaper in a
// process group of its own, with stdin on /dev/null and stdout and stderr on
// one pipe whose lines are copied, prefixed with the hook's name, to the
// caller's writer.
//
// It must never wait for a process itself (the reaper owns wait4, and
// exec.Cmd.Wait would block on a grandchild holding the output pipe:
// golang/go#23019), never signal anything but its own hooks' process groups,
// and never let a hook's failure, hang or output flood delay the caller past
// the deadline or stop the next hook.
//
// The time arithmetic, per hook:
//
//	limit = min(start + Timeout, deadline)
//	SIGKILL to the hook's group at limit (or at once when ctx is cancelled)
//	reaping and draining output end by min(exit, limit) + drainGrace
//	Run gives up on a stuck output writer at that point + joinGrace
//
// so Run returns at most Grace (drainGrace + joinGrace) after the deadline,
// and a hook that would start with no time left is not started.
package hooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/spotinit/spotinit/internal/interp"
	"github.com/spotinit/spotinit/reaper"
)

const (
	// drainGrace bounds how long output is still read after a hook has
	// exited (or its time is up): output of a daemon the hook left holding
	// the pipe is cut there.
	drainGrace = 100 * time.Millisecond
	// joinGrace bounds how long Run waits, after the drain ends, for the
	// output copier's last write to the caller's writer.
	joinGrace = 50 * time.Millisecond

	// Grace is the most Run can return after its deadline: the time to reap
	// a killed hook and drain its output, plus the last output write. The
	// caller's shutdown arithmetic must leave this much after the deadline.
	Grace = drainGrace + joinGrace
)

// errNoTime is the Err of a hook that was not started because its deadline
// had already passed.
var errNoTime = fmt.Errorf("no time left before the deadline: %w", context.DeadlineExceeded)

// Hook is one command to run.
type Hook struct {
	// Name is used in logs and in the output prefix: "pre-stop[1]" for a
	// command, the file name for a directory entry.
	Name string
	// Path is the program: "/bin/sh" for commands, the file for directory
	// hooks.
	Path string
	// Argv is the argument vector, e.g. {"sh", "-c", CMD} or {file}; empty
	// means {Path}.
	Argv []string
}

// Config says how hooks run.
type Config struct {
	// Reaper starts the hooks and reports their exits. Required; its Run
	// must be running.
	Reaper *reaper.Reaper
	// Timeout bounds each hook (--hook-timeout). Zero or less means only the
	// deadline bounds a hook.
	Timeout time.Duration
	// Env is the hooks' whole environment (the child's plus the SPOTINIT_*
	// variables); nil means spotinit's own, as for the supervisor's child.
	Env []string
	// Output receives the hooks' stdout and stderr, one Write per line, each
	// line prefixed "hook NAME: " and ending in a newline. Lines longer than
	// 16 KiB are split. nil discards (the output is still drained). A Write
	// that blocks for longer than Grace makes Run return without waiting
	// for it (the copier ends when that Write returns).
	Output io.Writer
	// Log receives one line per hook; nil discards.
	Log *slog.Logger
}

// Result is how one hook ended.
type Result struct {
	Name string
	// Code is the exit code, 128+N when a signal N killed the hook (137
	// when Run killed it), and -1 when it was not started (Err says why) or
	// its exit did not arrive within the grace after SIGKILL (Err is nil: a
	// process stuck in the kernel, or a Reaper whose Run is not running).
	Code int
	// Duration runs from the start to the exit (or to when Run gave up).
	Duration time.Duration
	// TimedOut says the hook was killed, or not started, because its time
	// (Timeout or the deadline) was up.
	TimedOut bool
	// Cancelled says the hook was killed because ctx was cancelled while it
	// ran (the caller was ending).
	Cancelled bool
	// Killed says Run's SIGKILL reached a process of the hook's group: the
	// hook itself when its time was up or ctx was cancelled, or what it
	// left in its group after it exited.
	Killed bool
	// Err is set exactly when the hook was not started, and says why: the
	// exec error, ctx.Err() when ctx was cancelled before its turn, or an
	// error wrapping context.DeadlineExceeded when no time was left. A hook
	// killed because ctx was cancelled while it ran has Code 137, Cancelled
	// set, TimedOut false and no Err.
	Err error
}

// Commands returns one "/bin/sh -c CMD" hook per command, named prefix+"[1]",
// prefix+"[2]", and so on in the order given.
func Commands(prefix string, cmds []string) []Hook {
	hooks := make([]Hook, 0, len(cmds))
	for i, c := range cmds {
		hooks = append(hooks, Hook{
			Name: fmt.Sprintf("%s[%d]", prefix, i+1),
			Path: shell,
			Argv: []string{"sh", "-c", c},
		})
	}
	return hooks
}

// Run runs hooks one after another and returns one Result per hook, in
// order. Each hook gets min(cfg.Timeout, time left until deadline); a zero
// deadline means only cfg.Timeout bounds it. When a hook's time is up its
// whole process group gets SIGKILL; when it exits, whatever it left in its
// process group gets SIGKILL too (a hook's work must be done when it exits).
// Run returns once every hook has ended or been killed, never later than
// Grace after deadline, and never waits for processes that hold a hook's
// output pipe open. When ctx is cancelled Run kills the running hook's group
// and skips the rest (Code -1, Err ctx.Err()).
func Run(ctx context.Context, cfg Config, hooks []Hook, deadline time.Time) []Result {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out := cfg.Output
	if out == nil {
		out = io.Discard
	}
	env := cfg.Env
	if env == nil {
		env = os.Environ()
	}
	r := &runner{cfg: cfg, log: log, out: out, env: env}
	results := make([]Result, 0, len(hooks))
	if len(hooks) == 0 {
		return results
	}
	stdin, err := openStdin()
	if err != nil {
		for _, h := range hooks {
			results = append(results, r.notStarted(h, fmt.Errorf("open stdin: %w", err)))
		}
		return results
	}
	defer stdin.Close()
	r.stdin = stdin
	for _, h := range hooks {
		if err := ctx.Err(); err != nil {
			log.Warn("hook skipped", "name", h.Name, "err", err)
			results = append(results, Result{Name: h.Name, Code: -1, Err: err})
			continue
		}
		results = append(results, r.run(ctx, h, deadline))
	}
	return results
}

// openStdin opens /dev/null for the hooks' stdin. Where there is no
// /dev/null (a bare chroot), the read end of an empty pipe whose write end is
// closed gives the same immediate EOF.
func openStdin() (*os.File, error) {
	if f, err := os.Open(os.DevNull); err == nil {
		return f, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	pw.Close()
	return pr, nil
}

// runner holds what every hook of one Run shares.
type runner struct {
	cfg   Config
	log   *slog.Logger
	out   io.Writer
	env   []string
	stdin *os.File
}

func (r *runner) notStarted(h Hook, err error) Result {
	r.log.Warn("hook not started", "name", h.Name, "err", err)
	return Result{Name: h.Name, Code: -1, Err: err}
}

// run runs one hook; see Run and the package doc for the time arithmetic.
func (r *runner) run(ctx context.Context, h Hook, deadline time.Time) Result {
	start := time.Now()
	var limit time.Time // zero: no limit
	if r.cfg.Timeout > 0 {
		limit = start.Add(r.cfg.Timeout)
	}
	if !deadline.IsZero() && (limit.IsZero() || deadline.Before(limit)) {
		limit = deadline
	}
	if !limit.IsZero() && !start.Before(limit) {
		r.log.Warn("hook skipped", "name", h.Name, "err", errNoTime)
		return Result{Name: h.Name, Code: -1, TimedOut: true, Err: errNoTime}
	}
	if r.cfg.Reaper == nil {
		return r.notStarted(h, errors.New("no reaper configured"))
	}

	// The read end stays non-blocking (os.Pipe registers it with the
	// poller) so read deadlines and Close interrupt a blocked Read. The
	// write end's Fd puts it back in blocking mode, which is what the hook
	// must see on its stdout and stderr. Both are close-on-exec: only the
	// copies on the child's 0, 1 and 2 survive exec.
	pr, pw, err := os.Pipe()
	if err != nil {
		return r.notStarted(h, fmt.Errorf("create output pipe: %w", err))
	}
	argv := h.Argv
	if len(argv) == 0 {
		argv = []string{h.Path}
	}
	attr := &syscall.ProcAttr{
		Env:   r.env,
		Files: []uintptr{r.stdin.Fd(), pw.Fd(), pw.Fd()}, // the reaper closes anything inherited beyond these
		Sys:   &syscall.SysProcAttr{Setpgid: true},       // pgid = pid: killable as -pid
	}
	pid, exitC, err := r.cfg.Reaper.Start(h.Path, argv, attr)
	// Our copy of the write end must go at once, or the read end never
	// sees EOF.
	pw.Close()
	if err != nil {
		pr.Close()
		if errors.Is(err, syscall.ENOENT) {
			// Name the missing #! interpreter or ELF loader, if that is it.
			if why := interp.Missing(h.Path); why != nil {
				err = why
			}
		}
		return r.notStarted(h, fmt.Errorf("start %q: %w", h.Path, err))
	}
	r.log.Debug("hook started", "name", h.Name, "pid", pid, "path", h.Path)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		copyLines(r.out, pr, "hook "+h.Name+": ")
	}()

	res := Result{Name: h.Name, Code: -1}
	var timeC <-chan time.Time
	if !limit.IsZero() {
		t := time.NewTimer(time.Until(limit))
		defer t.Stop()
		timeC = t.C
	}
	var (
		exit      reaper.Exit
		exited    bool
		cancelled bool
	)
	select {
	case exit = <-exitC:
		exited = true
	case <-timeC:
		res.TimedOut = true
	case <-ctx.Done():
		cancelled = true
	}
	if !exited {
		// An exit that raced the timer or ctx wins: the hook ended by
		// itself.
		select {
		case exit = <-exitC:
			exited, res.TimedOut, cancelled = true, false, false
		default:
		}
	}
	stopped := time.Now() // the exit, or the moment the hook's time was up
	// After an exit this kills what the hook left in its group (background
	// jobs); before, the hook itself with all of its group.
	killed := killGroup(pid)
	res.Killed, res.Cancelled = killed, cancelled
	hard := stopped.Add(drainGrace)
	if !exited {
		t := time.NewTimer(time.Until(hard))
		select {
		case exit = <-exitC:
			exited = true
		case <-t.C:
			// Stuck in the kernel, or no reaper running: the buffered
			// exit channel is dropped and collected later.
			r.log.Warn("hook not reaped", "name", h.Name, "pid", pid)
		}
		t.Stop()
	} else if killed {
		r.log.Info("hook leftovers killed", "name", h.Name)
	}
	res.Duration = time.Since(start)
	if exited {
		res.Code = exit.Code()
	}
	r.finishOutput(h, pr, copied, hard)

	switch {
	case res.TimedOut:
		r.log.Warn("hook timed out", "name", h.Name, "after", stopped.Sub(start), "code", res.Code)
	case cancelled:
		r.log.Warn("hook cancelled", "name", h.Name, "duration", res.Duration, "code", res.Code)
	case res.Code != 0:
		r.log.Warn("hook failed", "name", h.Name, "code", res.Code, "duration", res.Duration)
	default:
		r.log.Info("hook finished", "name", h.Name, "code", res.Code, "duration", res.Duration)
	}
	return res
}

// killGroup sends SIGKILL to the process group pgid and reports whether it
// reached any process.
//
// After the hook has been reaped its pid (the group's id) stays allocated as
// long as any member of the group lives, so this cannot reach a stranger
// unless the group emptied and the pid was recycled in between: a pid_max
// wrap-around within microseconds.
func killGroup(pgid int) bool {
	// ESRCH: the group is empty (the normal case once a hook has exited).
	// EPERM: a member changed its credentials (a setuid program); nothing
	// more can be done from here.
	return syscall.Kill(-pgid, syscall.SIGKILL) == nil
}

// finishOutput lets the copier drain the pipe until EOF or until hard, then
// closes the read end, so that a daemon the hook left holding the pipe gets
// EPIPE instead of holding Run up. It waits at most joinGrace past hard for
// the copier to end.
func (r *runner) finishOutput(h Hook, pr *os.File, copied <-chan struct{}, hard time.Time) {
	defer pr.Close()
	if err := pr.SetReadDeadline(hard); err != nil {
		// Not pollable (cannot happen with os.Pipe): closing now is the
		// only way to interrupt the copier's Read.
		pr.Close()
	}
	t := time.NewTimer(time.Until(hard.Add(joinGrace)))
	defer t.Stop()
	select {
	case <-copied:
	case <-t.C:
		// The copier is inside a Write to the output that does not
		// return; it ends as soon as that Write does (its next Read
		// fails on the closed pipe).
		r.log.Warn("hook output stuck", "name", h.Name)
	}
}
