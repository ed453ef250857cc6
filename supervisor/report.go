package supervisor

import (
	"strconv"
	"time"

	"github.com/spotinit/spotinit/hooks"
)

// hookReport is one hook's line in the stop report.
type hookReport struct {
	Name     string `json:"name"`
	Status   string `json:"status"`
	Duration string `json:"duration"`
}

func (h hookReport) String() string { return h.Name + ":" + h.Status + ":" + h.Duration }

func hookStatus(r hooks.Result) string {
	switch {
	case r.TimedOut:
		return "timeout"
	case r.Err != nil:
		return "not-started"
	case r.Code == 0:
		return "ok"
	}
	return "exit-" + strconv.Itoa(r.Code)
}

// report logs the one summary line of a container's end, so that one
// query across a fleet answers "did we shut down cleanly?": trigger is
// what started the shutdown (the first of a notice and a stop signal), lead
// the time from it to the deadline it gave, left the time that remained
// before spotinit's own kill deadline when the child ended.
func (s *run) report(res Result) {
	trigger := s.trigger
	if trigger == "" {
		trigger = "child-exit" // the child ended on its own
	}
	args := []any{"trigger", trigger}
	if s.action != "" && s.action != s.trigger {
		args = append(args, "action", s.action)
	}
	if !s.triggerAt.IsZero() && !s.triggerEnd.IsZero() {
		args = append(args, "lead", s.triggerEnd.Sub(s.triggerAt).Round(time.Millisecond))
	}
	hs := make([]hookReport, 0, len(s.preStop.results)+len(s.rebalance.results))
	for _, r := range append(append([]hooks.Result(nil), s.preStop.results...), s.rebalance.results...) {
		hs = append(hs, hookReport{Name: r.Name, Status: hookStatus(r), Duration: r.Duration.Round(time.Millisecond).String()})
	}
	args = append(args, "hooks", hs)
	switch {
	case !s.exited:
		args = append(args, "child", "unknown")
	case s.exit.Status.Signaled():
		args = append(args, "child", "signal "+SignalName(s.exit.Status.Signal()))
	default:
		args = append(args, "child", "exit "+strconv.Itoa(s.exit.Status.ExitStatus()))
	}
	args = append(args, "code", res.Code, "killed", res.Killed)
	if !s.deadline.IsZero() && s.exited {
		args = append(args, "left", s.deadline.Sub(s.exitAt).Round(time.Millisecond))
	}
	s.log.Info("stop report", args...)
}
