package supervisor

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/spotinit/spotinit/internal/atomicfile"
	"github.com/spotinit/spotinit/interruption"
)

// Hibernate says what a Spot hibernate notice does. EC2 freezes the
// instance's memory and later resumes it: processes survive.
type Hibernate int

const (
	// HibernateHooks runs the pre-stop hooks but does not stop the child.
	HibernateHooks Hibernate = iota
	// HibernateStop treats hibernation like termination.
	HibernateStop
	// HibernateIgnore only logs the notice.
	HibernateIgnore
)

// ParseHibernate parses "hooks", "stop" or "ignore".
func ParseHibernate(s string) (Hibernate, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "hooks":
		return HibernateHooks, nil
	case "stop":
		return HibernateStop, nil
	case "ignore":
		return HibernateIgnore, nil
	}
	return 0, fmt.Errorf("want stop, hooks or ignore")
}

// onNotice reacts to an interruption notice, each one once: the watcher
// delivers every notice once, and again (Update) only when its deadline
// moves earlier.
func (s *run) onNotice(n interruption.Notice) {
	if n.Update {
		s.noteDeadline(n.Deadline)
		return
	}
	switch {
	case n.Kind == interruption.Rebalance:
		// An early warning, not a certainty: hooks and signal, never a stop.
		s.noticeSideEffects(n)
		if !s.rebalance.started && len(s.cfg.OnRebalance) > 0 {
			s.startHooks(&s.rebalance, "on-rebalance", s.cfg.OnRebalance, noticeEvent(n), time.Time{})
		}
		return
	case n.Kind == interruption.Spot && n.Action == "hibernate" && s.cfg.Hibernate != HibernateStop:
		if s.cfg.Hibernate == HibernateIgnore {
			s.log.Info("hibernate notice ignored", "deadline", n.Deadline)
			return
		}
		// The processes will be frozen and resumed: prepare, don't stop.
		s.noticeSideEffects(n)
		s.startPreStop(noticeEvent(n), s.hookDeadline())
		return
	}
	// The instance is going away: spot terminate or stop, ASG
	// termination, a scheduled stop or retirement.
	s.noteDeadline(n.Deadline)
	s.noticeSideEffects(n)
	if s.trigger == "" {
		s.trigger, s.action, s.triggerAt, s.triggerEnd = string(n.Kind), n.Action, n.Seen, n.Deadline
	}
	if s.state != running || s.exited {
		return
	}
	s.startPreStop(noticeEvent(n), s.hookDeadline())
	if s.cfg.StopOnNotice {
		if s.preStop.running() {
			s.stopAfterHooks = true
		} else {
			s.stopForNotice()
		}
	}
}

func noticeEvent(n interruption.Notice) hookEvent {
	at := n.Time
	if at.IsZero() {
		at = n.Seen
	}
	return hookEvent{event: string(n.Kind), action: n.Action, at: at, deadline: n.Deadline}
}

// hookDeadline bounds hooks started by a notice (the package doc has the
// formula); zero (the hook timeout alone) when no deadline is known.
func (s *run) hookDeadline() time.Time {
	if s.instanceDeadline.IsZero() {
		return time.Time{}
	}
	d := s.instanceDeadline.Add(-s.cfg.KillMargin)
	// A deadline already past still gives each hook a moment.
	now := s.clock.Now()
	return atLeast(d.Add(-reserve(d.Sub(now))), now.Add(time.Second))
}

// stopForNotice starts the stop sequence on spotinit's own initiative
// (StopOnNotice): the child's stop signal, then SIGKILL at the deadline that
// beginStop caps by the notice's.
func (s *run) stopForNotice() {
	to := syscall.SIGTERM
	if r, ok := s.cfg.Rewrite[syscall.SIGTERM]; ok {
		to = r
	}
	s.beginStop(s.trigger, to, s.clock.Now().Add(s.cfg.StopTimeout-s.cfg.KillMargin))
}

// noteDeadline records a notice's deadline; an earlier one also pulls in a
// stop deadline that is already running. Deadlines never move later.
func (s *run) noteDeadline(t time.Time) {
	if t.IsZero() || !s.instanceDeadline.IsZero() && !t.Before(s.instanceDeadline) {
		return
	}
	s.instanceDeadline = t
	if s.state == stopping || s.state == draining {
		if c := s.capDeadline(s.deadline); c.Before(s.deadline) {
			s.setDeadline(c)
			s.log.Info("deadline moved earlier", "deadline", s.deadline)
		}
	}
}

// noticeSideEffects writes the notice file and sends the notice signal.
func (s *run) noticeSideEffects(n interruption.Notice) {
	if s.cfg.NoticeFile != "" {
		if err := writeNoticeFile(s.cfg.NoticeFile, n); err != nil {
			s.log.Warn("cannot write notice file", "path", s.cfg.NoticeFile, "err", err)
		}
	}
	if s.cfg.NoticeSignal != 0 && !s.exited && s.noticeHeldAt.IsZero() {
		s.sendNoticeSignal()
	}
}

// The notice signal goes to the child only once the child catches or
// ignores it. Its default action ends most processes (SIGUSR1, SIGHUP, …),
// and a notice can come before the app has set its handler: a notice
// already active when a container restarts on the same instance is seen
// a millisecond after the child starts. Until then the signal waits, and
// spotinit looks again after 10 ms, doubling to 1 s, for as long as the
// child runs. Signals whose default action is to do nothing go at once.
const (
	noticeRetryFirst = 10 * time.Millisecond
	noticeRetryMax   = time.Second
)

// sendNoticeSignal sends the notice signal, or holds it while the child
// would die of it.
func (s *run) sendNoticeSignal() {
	sig := s.cfg.NoticeSignal
	if s.exited {
		return
	}
	if handled, ok := s.kern.Handles(s.pid, sig); ok && !handled && !harmless(sig) {
		if s.noticeHeldAt.IsZero() {
			s.noticeHeldAt = s.clock.Now()
			s.noticeWait = noticeRetryFirst
			s.log.Info("notice signal held", "signal", SignalName(sig), "pid", s.pid,
				"reason", "the child neither catches nor ignores it yet, and would die of it")
		} else {
			s.noticeWait = min(2*s.noticeWait, noticeRetryMax)
		}
		s.noticeTimer = s.clock.NewTimer(s.noticeWait)
		s.noticeC = s.noticeTimer.C()
		return
	}
	// To the child alone, even when stop signals go to its group: the
	// child's disposition is the one checked above, and a notice is not a
	// stop, so its group (a shell's sleep, an app's workers) must not die
	// of a signal only the app asked for.
	if err := s.kern.Kill(s.pid, sig); err != nil {
		s.log.Debug("notice signal failed", "signal", SignalName(sig), "pid", s.pid, "err", err)
		return
	}
	args := []any{"signal", SignalName(sig), "pid", s.pid}
	if !s.noticeHeldAt.IsZero() {
		args = append(args, "held", s.clock.Now().Sub(s.noticeHeldAt))
	}
	s.noticeHeldAt = time.Time{}
	s.log.Info("notice signal sent", args...)
}

// dropNoticeSignal gives up a held notice signal: the child is gone.
func (s *run) dropNoticeSignal() {
	if s.noticeTimer != nil {
		s.noticeTimer.Stop()
		s.noticeTimer, s.noticeC = nil, nil
	}
	if !s.noticeHeldAt.IsZero() {
		s.log.Info("notice signal not sent", "signal", SignalName(s.cfg.NoticeSignal), "pid", s.pid,
			"held", s.clock.Now().Sub(s.noticeHeldAt), "reason", "the child exited without handling it")
		s.noticeHeldAt = time.Time{}
	}
}

// harmless reports whether sig's default action is to do nothing.
func harmless(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGCHLD, syscall.SIGCONT, syscall.SIGURG, syscall.SIGWINCH:
		return true
	}
	return false
}

// noticeJSON is the notice file's content.
type noticeJSON struct {
	Kind       string `json:"kind"`
	Action     string `json:"action"`
	NoticeTime string `json:"notice_time,omitempty"`
	Deadline   string `json:"deadline,omitempty"`
	Seen       string `json:"seen"`
}

// writeNoticeFile replaces path with the notice as JSON, atomically
// (atomicfile: a symlink at path is replaced, never followed).
func writeNoticeFile(path string, n interruption.Notice) error {
	b, err := json.Marshal(noticeJSON{
		Kind:       string(n.Kind),
		Action:     n.Action,
		NoticeTime: rfc3339(n.Time),
		Deadline:   rfc3339(n.Deadline),
		Seen:       rfc3339(n.Seen),
	})
	if err != nil {
		return err
	}
	return atomicfile.Write(path, "spotinit-notice", append(b, '\n'))
}
