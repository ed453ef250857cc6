package supervisor

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spotinit/spotinit/hooks"
)

// hookRun is one run of a hook list (pre-stop or on-rebalance): at most
// once per container lifetime, in a goroutine of its own that the loop owns
// and hears from on done.
type hookRun struct {
	started bool
	done    chan []hooks.Result // nil until started; the loop's select ignores it
	results []hooks.Result
	ended   bool
}

func (h *hookRun) running() bool { return h.started && !h.ended }

func (h *hookRun) finish(rs []hooks.Result) {
	h.results, h.ended, h.done = rs, true, nil
}

// hookEvent is what the hooks learn about the reason they run, through
// their environment.
type hookEvent struct {
	event    string    // SPOTINIT_EVENT
	action   string    // SPOTINIT_ACTION
	at       time.Time // SPOTINIT_NOTICE_TIME
	deadline time.Time // SPOTINIT_DEADLINE
}

func (s *run) hasPreStop() bool { return len(s.cfg.PreStop) > 0 || s.cfg.PreStopDir != "" }

// startPreStop runs the pre-stop hooks, once, each bounded by the hook
// timeout and all by deadline (zero: the timeout alone).
func (s *run) startPreStop(ev hookEvent, deadline time.Time) {
	if s.preStop.started || !s.hasPreStop() {
		return
	}
	list := append([]hooks.Hook(nil), s.cfg.PreStop...)
	if s.cfg.PreStopDir != "" {
		dir, skipped, err := hooks.Dir(s.cfg.PreStopDir)
		for _, e := range skipped {
			s.log.Warn("hook file skipped", "err", e)
		}
		if err != nil {
			s.log.Warn("cannot list pre-stop hooks", "dir", s.cfg.PreStopDir, "err", err)
		}
		list = append(list, dir...)
	}
	s.startHooks(&s.preStop, "pre-stop", list, ev, deadline)
}

func (s *run) startHooks(h *hookRun, kind string, list []hooks.Hook, ev hookEvent, deadline time.Time) {
	h.started = true
	h.done = make(chan []hooks.Result, 1)
	if len(list) == 0 {
		h.done <- nil
		return
	}
	args := []any{"kind", kind, "count", len(list), "event", ev.event}
	if !deadline.IsZero() {
		args = append(args, "deadline", deadline)
	}
	s.log.Info("running hooks", args...)
	cfg := hooks.Config{
		Reaper:  s.cfg.Reaper,
		Timeout: s.cfg.HookTimeout,
		Env:     s.hookEnv(ev),
		Output:  s.cfg.HookOutput,
		Log:     s.log,
	}
	run := s.runHooks
	go func(done chan<- []hooks.Result) {
		done <- run(s.hooksCtx, cfg, list, deadline)
	}(h.done)
}

func (s *run) onPreStopDone(rs []hooks.Result) {
	s.preStop.finish(rs)
	switch {
	case s.heldStop == 0 || s.delayC != nil:
		// Nothing held, or held by the forward delay alone (the hooks ran
		// alongside the child).
	case s.cfg.ForwardDelay > 0:
		s.startDelay(s.clock.Now(), s.deadline)
	default:
		to := s.heldStop
		s.heldStop = 0
		s.signalStop(to)
		s.log.Info("pre-stop hooks done, child signalled", "pid", s.pid, "signal", heldName(to))
	}
	if s.stopAfterHooks && s.state == running && !s.exited {
		s.stopAfterHooks = false
		s.stopForNotice()
	}
	s.afterHooks()
}

func (s *run) hooksRunning() bool { return s.preStop.running() || s.rebalance.running() }

// afterHooks resumes the wait for the rest of the tree that hooks had held
// up once the child is gone.
func (s *run) afterHooks() {
	if !s.exited || s.hooksRunning() {
		return
	}
	switch s.state {
	case draining:
		if s.waveDue {
			s.termWave()
			return
		}
		s.checkTreeGone()
	case killing:
		s.checkTreeGone()
	}
}

// heldName names a held stop signal; -1 stands for one rewritten to nothing.
func heldName(sig syscall.Signal) string {
	if sig <= 0 {
		return "none"
	}
	return SignalName(sig)
}

// hookEnv is the child's environment with the SPOTINIT_* variables that
// describe the event set (replacing any of the same name).
func (s *run) hookEnv(ev hookEvent) []string {
	set := map[string]string{
		"SPOTINIT_EVENT":       ev.event,
		"SPOTINIT_ACTION":      ev.action,
		"SPOTINIT_NOTICE_TIME": rfc3339(ev.at),
		"SPOTINIT_DEADLINE":    rfc3339(ev.deadline),
		"SPOTINIT_CHILD_PID":   strconv.Itoa(s.pid),
	}
	env := make([]string, 0, len(s.cfg.Env)+len(set))
	for _, kv := range s.cfg.Env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			env = append(env, kv)
		}
	}
	for _, k := range []string{"SPOTINIT_EVENT", "SPOTINIT_ACTION", "SPOTINIT_NOTICE_TIME", "SPOTINIT_DEADLINE", "SPOTINIT_CHILD_PID"} {
		env = append(env, k+"="+set[k])
	}
	return env
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// waitHooks ends any hook still running (cancel kills its process group)
// and waits for the goroutines, so none outlives Run.
func (s *run) waitHooks(cancel context.CancelFunc) {
	cancel()
	for _, h := range []*hookRun{&s.preStop, &s.rebalance} {
		if h.running() {
			h.finish(<-h.done)
		}
	}
}
