package supervisor

import (
	"syscall"
	"time"
)

// The forward delay (ForwardDelay): the child's first stop signal waits in
// heldStop, as it does for the pre-stop hooks, until delayC fires, a second
// stop signal comes, or the child exits. The package doc has the formula.

// held is the value heldStop takes for a stop signal rewritten to to: -1
// stands for "rewritten to nothing", so that the wait still happens and
// only SIGCONT follows it.
func held(to syscall.Signal) syscall.Signal {
	if to == 0 {
		return -1
	}
	return to
}

// startDelay starts the forward delay of the held stop signal, counted from
// from (the hooks' end or the stop start), within the bound that deadline
// leaves; the signal goes at once when no time is left for it.
func (s *run) startDelay(from, deadline time.Time) {
	now := s.clock.Now()
	s.delayBegan = now
	end := from.Add(s.cfg.ForwardDelay)
	if b := s.delayBound(deadline); b.Before(end) {
		end = b
	}
	if !end.After(now) {
		s.endDelay() // the hooks, or a notice, used the time up
		return
	}
	s.armDelay(end)
	s.log.Info("stop signal delayed", "pid", s.pid, "signal", heldName(s.heldStop), "delay", end.Sub(from))
}

// delayBound is the latest the child's stop signal may go with deadline:
// the child keeps reserve(deadline - stop start), as with the hooks.
func (s *run) delayBound(deadline time.Time) time.Time {
	return deadline.Add(-reserve(deadline.Sub(s.stopBegan)))
}

// armDelay (re)sets the delay's timer to end at end.
func (s *run) armDelay(end time.Time) {
	s.stopDelay()
	s.delayUntil = end
	s.delayTimer = s.clock.NewTimer(end.Sub(s.clock.Now()))
	s.delayC = s.delayTimer.C()
}

// stopDelay stops the delay's timer, if any; the held signal stays held.
func (s *run) stopDelay() {
	if s.delayTimer != nil {
		s.delayTimer.Stop()
		s.delayTimer, s.delayC = nil, nil
	}
}

// onDelayEnd: the delay is over.
func (s *run) onDelayEnd() {
	s.delayTimer, s.delayC = nil, nil
	if s.heldStop != 0 && !s.exited {
		s.endDelay()
	}
}

// endDelay sends the held stop signal now and logs it with args.
func (s *run) endDelay(args ...any) {
	to := s.heldStop
	s.heldStop = 0
	s.stopDelay()
	s.signalStop(to)
	waited := s.clock.Now().Sub(s.delayBegan).Round(time.Millisecond)
	s.delayed = waited
	s.log.Info("forward delay over, child signalled", append([]any{"pid", s.pid, "signal", heldName(to), "waited", waited}, args...)...)
}
