package supervisor

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/spotinit/spotinit/hooks"
	"github.com/spotinit/spotinit/reaper"
)

// summary renders the parts of a report the deadline rows check.
func summary(r Report) string {
	trigger := r.Trigger
	if r.Action != "" {
		trigger += "/" + r.Action
	}
	lead, left, child := "none", "none", "unknown"
	if r.Lead != nil {
		lead = r.Lead.String()
	}
	if r.Left != nil {
		left = r.Left.String()
	}
	if r.ChildExited {
		child = fmt.Sprint(r.ChildCode)
		if r.ChildSignal != 0 {
			child += "/" + SignalName(r.ChildSignal)
		}
	}
	return fmt.Sprintf("trigger=%s lead=%s child=%s killed_child=%v descendants=%d left=%s",
		trigger, lead, child, r.KilledChild, r.KilledDescendants, left)
}

// checkReport checks what holds for every report: left is never negative
// and never there after the child was killed, and Killed says whether
// anything was.
func checkReport(t *testing.T, res Result) {
	t.Helper()
	r := res.Report
	if r.Left != nil && (*r.Left < 0 || r.KilledChild) {
		t.Errorf("left %v with killed_child %v", *r.Left, r.KilledChild)
	}
	if res.Killed != r.Killed() {
		t.Errorf("Result.Killed %v, Report.Killed %v", res.Killed, r.Killed())
	}
	if want := r.KilledChild || r.KilledDescendants > 0; len(r.Hooks) == 0 && r.Killed() != want {
		t.Errorf("Killed %v with killed_child %v, descendants %d", r.Killed(), r.KilledChild, r.KilledDescendants)
	}
	if r.Trigger == "" {
		t.Error("no trigger")
	}
}

// TestReportLeftNotNegative: a child whose exit the loop takes after the
// deadline's time (the timer fired, but the exit came first in the select)
// leaves 0, not a negative time.
func TestReportLeftNotNegative(t *testing.T) {
	h := newHarness(t, Config{StopTimeout: 30 * sec, KillMargin: 2 * sec}, fakeProc{})
	h.play([]event{sigAt(0, syscall.SIGTERM)})
	h.clock.set(h.at(28*sec + 11*ms)) // the timer is due, not yet handled
	h.w.child.status = syscall.WaitStatus(0)
	h.w.gone(h.w.child)
	e := <-h.s.exitC
	h.s.exitC = nil
	h.s.onChildExit(e)
	rep := h.runOut().Report
	if rep.Left == nil || *rep.Left != 0 {
		t.Errorf("left %v, want 0", rep.Left)
	}
	if rep.KilledChild {
		t.Error("the child was killed after its exit")
	}
}

// TestHookStatus: each way a hook ends has its status, and the report lists
// the pre-stop hooks, then the on-rebalance ones.
func TestHookStatus(t *testing.T) {
	for _, tc := range []struct {
		r    hooks.Result
		want string
	}{
		{hooks.Result{Code: 0}, "ok"},
		{hooks.Result{Code: 3}, "exit-3"},
		{hooks.Result{Code: 137, TimedOut: true, Killed: true}, "timeout"},
		{hooks.Result{Code: -1, TimedOut: true, Err: fmt.Errorf("no time")}, "timeout"},
		{hooks.Result{Code: 137, Cancelled: true, Killed: true}, "cancelled"},
		{hooks.Result{Code: -1, Err: syscall.ENOENT}, "not-started"},
		{hooks.Result{Code: -1}, "unknown"},
	} {
		if got := hookStatus(tc.r); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.r, got, tc.want)
		}
	}
	s := &run{cfg: Config{StopTimeout: 30 * sec}, exited: true, exit: reaper.Exit{Status: syscall.WaitStatus(7 << 8)}}
	s.rebalance.results = []hooks.Result{{Name: "on-rebalance[1]"}}
	s.preStop.results = []hooks.Result{{Name: "pre-stop[1]", Code: 0, Killed: true}}
	rep := s.report()
	if len(rep.Hooks) != 2 || rep.Hooks[0].Kind != "pre-stop" || rep.Hooks[1].Kind != "on-rebalance" {
		t.Errorf("hooks %+v", rep.Hooks)
	}
	if !rep.Killed() || rep.KilledChild || rep.ChildCode != 7 || rep.Trigger != "child-exit" {
		t.Errorf("report %+v: a hook's leftovers killed make killed true", rep)
	}
}
