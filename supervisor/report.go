package supervisor

import (
	"strconv"
	"syscall"
	"time"

	"github.com/spotinit/spotinit/hooks"
)

// Report is what the stop report says about a run, as typed data: Run
// returns it in Result once every process and hook it started is gone, and
// the caller renders it (docs/stop-report.md names each field and its unit).
type Report struct {
	// Trigger is what started the shutdown, the first of a stop signal (its
	// name, "SIGTERM") and a terminating notice (its kind,
	// "spot-interruption"), or "child-exit" when the child ended first.
	Trigger string
	// Action is the notice's action ("terminate", "instance-stop"); "" when
	// a signal or the child's exit was the trigger.
	Action string
	// Lead is the time from the trigger to the deadline it gave: from when
	// the notice was first seen (Notice.Seen: a scheduled event's first
	// listing, not when it was acted on) to its deadline, or from a stop
	// signal to its stop deadline. Negative when a notice came after its
	// own deadline; nil for child-exit.
	Lead *time.Duration
	// Deadline is when spotinit sends SIGKILL to what is left: the stop
	// deadline, or the descendants' deadline after the child's exit. Zero
	// when none was set.
	Deadline time.Time
	// Hooks are the hooks that ran: the pre-stop list, then the on-rebalance
	// list, each in its order.
	Hooks []HookReport

	// ChildExited says the child's end was seen; ChildCode is then its
	// status as a shell gives it (128+N for signal N), and ChildSignal the
	// signal that ended it (0: it exited). A child that did not end after
	// SIGKILL (stuck in the kernel) was not seen to end.
	ChildExited bool
	ChildCode   int
	ChildSignal syscall.Signal

	// KilledChild says spotinit sent SIGKILL to the child at the deadline.
	KilledChild bool
	// KilledDescendants counts the other processes spotinit sent SIGKILL at
	// a deadline, hooks still running then included.
	KilledDescendants int
	// Left is the time from the child's exit to the stop deadline, when the
	// child exited while the stop sequence ran and before its deadline;
	// never negative. Nil otherwise (no stop sequence, or killed).
	Left *time.Duration

	StopTimeout, KillMargin time.Duration
	// ForwardDelay is how long the forward delay held the child's first
	// stop signal (--forward-delay): until it went, a second stop signal
	// cut the delay short, or the child exited. Zero when none was held.
	ForwardDelay time.Duration
}

// HookReport is one hook's part of the stop report.
type HookReport struct {
	Name string
	// Kind is the list it belongs to: "pre-stop" or "on-rebalance".
	Kind string
	// Status is "ok", "exit-N", "timeout" (killed, or not started, because
	// its time was up), "cancelled" (killed because spotinit was ending),
	// "not-started" or "unknown" (its exit never came).
	Status   string
	Duration time.Duration
	// Killed says spotinit's SIGKILL reached the hook's process group: the
	// hook when its time was up or it was cancelled, or what it left behind.
	Killed bool
}

// Killed reports whether spotinit sent SIGKILL to any process: the child,
// another descendant, or a hook's process group.
func (r Report) Killed() bool {
	if r.KilledChild || r.KilledDescendants > 0 {
		return true
	}
	for _, h := range r.Hooks {
		if h.Killed {
			return true
		}
	}
	return false
}

func hookReport(kind string, r hooks.Result) HookReport {
	return HookReport{Name: r.Name, Kind: kind, Status: hookStatus(r), Duration: r.Duration, Killed: r.Killed}
}

func hookStatus(r hooks.Result) string {
	switch {
	case r.TimedOut:
		return "timeout"
	case r.Cancelled:
		return "cancelled"
	case r.Err != nil:
		return "not-started"
	case r.Code < 0:
		return "unknown"
	case r.Code == 0:
		return "ok"
	}
	return "exit-" + strconv.Itoa(r.Code)
}

// report gathers the stop report's data; Run calls it once the loop is
// over and the hooks have ended.
func (s *run) report() Report {
	rep := Report{
		Trigger:           s.trigger,
		Action:            s.action,
		Deadline:          s.deadline,
		KilledChild:       s.killed,
		KilledDescendants: s.killedOthers,
		Left:              s.left,
		StopTimeout:       s.cfg.StopTimeout,
		KillMargin:        s.cfg.KillMargin,
		ForwardDelay:      s.delayed,
		Hooks:             make([]HookReport, 0, len(s.preStop.results)+len(s.rebalance.results)),
	}
	if rep.Trigger == "" {
		rep.Trigger = "child-exit" // the child ended on its own
	}
	if rep.Action == rep.Trigger {
		rep.Action = "" // a stop signal: nothing more to say
	}
	if !s.triggerAt.IsZero() && !s.triggerEnd.IsZero() {
		lead := s.triggerEnd.Sub(s.triggerAt)
		rep.Lead = &lead
	}
	for _, r := range s.preStop.results {
		rep.Hooks = append(rep.Hooks, hookReport("pre-stop", r))
	}
	for _, r := range s.rebalance.results {
		rep.Hooks = append(rep.Hooks, hookReport("on-rebalance", r))
	}
	if s.exited {
		rep.ChildExited, rep.ChildCode = true, s.exit.Code()
		if s.exit.Status.Signaled() {
			rep.ChildSignal = s.exit.Status.Signal()
		}
	}
	return rep
}
