package simulator

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Paths that the simulator answers, usable as [Fault.Path].
const (
	// TokenPath is where IMDSv2 session tokens are requested with PUT.
	TokenPath = "/latest/api/token"
	// SpotPath serves the Spot interruption notice.
	SpotPath = "/latest/meta-data/spot/instance-action"
	// ASGPath serves the Auto Scaling target lifecycle state.
	ASGPath = "/latest/meta-data/autoscaling/target-lifecycle-state"
	// RebalancePath serves the rebalance recommendation.
	RebalancePath = "/latest/meta-data/events/recommendations/rebalance"
	// ScheduledPath serves the scheduled maintenance events.
	ScheduledPath = "/latest/meta-data/events/maintenance/scheduled"
)

// InstanceID is the fixed fake id served at /latest/meta-data/instance-id.
const InstanceID = "i-0123456789abcdef0"

// Region is the fixed fake region served at /latest/meta-data/placement/region.
const Region = "us-east-1"

// DefaultLead is the time between a Spot notice's announcement and the time it
// names, when [SpotNotice.Lead] is zero: what EC2 gives.
const DefaultLead = 2 * time.Minute

// DefaultDripEvery is the pause before each byte of a dripping answer when
// [Fault.DripEvery] is zero.
const DefaultDripEvery = 100 * time.Millisecond

// Scenario says what the simulated instance announces, relative to the
// server's start. The zero Scenario announces nothing and injects no fault.
type Scenario struct {
	// Spot is the Spot interruption notice; nil means never (404).
	Spot *SpotNotice
	// ASG drives autoscaling/target-lifecycle-state: "InService" until
	// After, then "Terminated"; nil means always "InService".
	ASG *Delayed
	// Rebalance is the rebalance recommendation; nil means never (404).
	Rebalance *Delayed
	// Scheduled lists the scheduled events, served as a JSON array ("[]"
	// when none has appeared yet).
	Scheduled []ScheduledEvent
	// TokenTTLMax caps the TTL granted to tokens (for tests of renewal);
	// zero grants what is asked.
	TokenTTLMax time.Duration
	// Faults are tried in order on every request; the first that matches
	// acts.
	Faults []Fault
}

// Announces lists the notices sc announces, named as the scenario text
// names them: "spot", "asg", "rebalance", "scheduled" (any scheduled event,
// whatever its code or state), in that order. A scenario of faults alone
// announces nothing.
func (sc Scenario) Announces() []string {
	var out []string
	for _, k := range []struct {
		name string
		has  bool
	}{
		{"spot", sc.Spot != nil},
		{"asg", sc.ASG != nil},
		{"rebalance", sc.Rebalance != nil},
		{"scheduled", len(sc.Scheduled) > 0},
	} {
		if k.has {
			out = append(out, k.name)
		}
	}
	return out
}

// Delayed is something that appears After the server's start.
type Delayed struct {
	After time.Duration
}

// SpotNotice describes spot/instance-action.
type SpotNotice struct {
	// After is how long after start the notice is announced.
	After time.Duration
	// Action is "terminate" (when empty), "stop", "hibernate", or anything
	// else a test wants a client to ignore.
	Action string
	// Lead is added to the announcement to give the notice's time; zero
	// means DefaultLead, a negative Lead gives a time in the past.
	Lead time.Duration
	// MovingTime serves time = now + Lead on every request, which is what
	// amazon-ec2-metadata-mock does.
	MovingTime bool
	// Time, when set, is served as is (stale notices, past times).
	Time *time.Time
}

// ScheduledEvent is one entry of events/maintenance/scheduled.
type ScheduledEvent struct {
	// Code is the event code: "instance-stop", "instance-retirement",
	// "instance-reboot", "system-reboot", "system-maintenance".
	Code string
	// State is "active" when empty, or "completed", "canceled".
	State string
	// EventID defaults to instance-event- and a number from the event's
	// position.
	EventID string
	// Description defaults to "simulated " and the code.
	Description string
	// NotBefore, when not zero, is served as is; otherwise NotBefore is the
	// server's start plus StartsIn.
	NotBefore time.Time
	// StartsIn places NotBefore relative to the server's start when
	// NotBefore is zero; it may be negative.
	StartsIn time.Duration
	// NotAfter, when not zero, is served as is; otherwise it is NotBefore
	// plus Lasts, or absent when Lasts is zero.
	NotAfter time.Time
	// Lasts gives NotAfter relative to NotBefore.
	Lasts time.Duration
	// After is how long after start the event appears in the list.
	After time.Duration
}

// Fault makes the simulator misbehave on some requests.
type Fault struct {
	// Path is the request path prefix the fault applies to ("" = all).
	Path string
	// From and Until bound the active window relative to start; Until zero
	// means forever.
	From, Until time.Duration
	// Status, when not zero, answers with this status (200 to 599) and
	// Body.
	Status int
	// Delay waits before answering; the wait ends early when the request's
	// context ends (a client timeout or the server's Close), and then
	// nothing is written. A hang is a Delay longer than the client's
	// timeout.
	Delay time.Duration
	// Body, when not empty, replaces the answer's body (malformed or
	// partial JSON); with Status zero the status is 200.
	Body string
	// Drip writes the answer one byte at a time, flushing each, with
	// DripEvery before each byte.
	Drip bool
	// DripEvery is the pause before each byte when Drip is set; zero means
	// DefaultDripEvery.
	DripEvery time.Duration
	// Reset closes the connection without answering (after Delay).
	Reset bool
}

// replaces reports whether the fault answers in place of the service.
func (f *Fault) replaces() bool { return f.Status != 0 || f.Body != "" }

// active reports whether the fault applies to path at elapsed.
func (f *Fault) active(path string, elapsed time.Duration) bool {
	return len(path) >= len(f.Path) && path[:len(f.Path)] == f.Path &&
		elapsed >= f.From && (f.Until == 0 || elapsed < f.Until)
}

// Validate reports the first thing in sc that the simulator cannot serve as
// written: a negative delay, a window that ends before it starts, a status
// outside 200–599, a fault that does nothing, contradictory options.
func (sc Scenario) Validate() error {
	if sp := sc.Spot; sp != nil {
		if sp.After < 0 {
			return fmt.Errorf("spot: negative delay %v", sp.After)
		}
		if sp.MovingTime && sp.Time != nil {
			return errors.New("spot: moving time and an explicit time exclude each other")
		}
	}
	if sc.ASG != nil && sc.ASG.After < 0 {
		return fmt.Errorf("asg: negative delay %v", sc.ASG.After)
	}
	if sc.Rebalance != nil && sc.Rebalance.After < 0 {
		return fmt.Errorf("rebalance: negative delay %v", sc.Rebalance.After)
	}
	if sc.TokenTTLMax < 0 {
		return fmt.Errorf("negative token ttl cap %v", sc.TokenTTLMax)
	}
	for i, ev := range sc.Scheduled {
		switch {
		case ev.After < 0:
			return fmt.Errorf("scheduled event %d: negative delay %v", i, ev.After)
		case ev.Lasts < 0:
			return fmt.Errorf("scheduled event %d: negative duration %v", i, ev.Lasts)
		case ev.Lasts != 0 && !ev.NotAfter.IsZero():
			return fmt.Errorf("scheduled event %d: lasts and not-after exclude each other", i)
		}
	}
	for i, f := range sc.Faults {
		switch {
		case f.From < 0 || f.Until < 0:
			return fmt.Errorf("fault %d: negative window %v-%v", i, f.From, f.Until)
		case f.Until != 0 && f.Until <= f.From:
			return fmt.Errorf("fault %d: window %v-%v ends before it starts", i, f.From, f.Until)
		case f.Status != 0 && (f.Status < 200 || f.Status > 599):
			return fmt.Errorf("fault %d: status %d outside 200-599", i, f.Status)
		case f.Delay < 0 || f.DripEvery < 0:
			return fmt.Errorf("fault %d: negative delay", i)
		case !f.replaces() && f.Delay == 0 && !f.Drip && !f.Reset:
			return fmt.Errorf("fault %d: does nothing (give a status, body, delay, drip or reset)", i)
		}
	}
	return nil
}

// clone returns a copy of sc that shares nothing mutable with it, with
// defaults filled in and values a handler could not serve made harmless, so
// that a handler never panics whatever it is given.
func (sc Scenario) clone() Scenario {
	out := sc
	if sp := sc.Spot; sp != nil {
		c := *sp
		if c.Action == "" {
			c.Action = "terminate"
		}
		if c.Lead == 0 {
			c.Lead = DefaultLead
		}
		if c.Time != nil {
			t := *c.Time
			c.Time = &t
		}
		out.Spot = &c
	}
	if sc.ASG != nil {
		c := *sc.ASG
		out.ASG = &c
	}
	if sc.Rebalance != nil {
		c := *sc.Rebalance
		out.Rebalance = &c
	}
	out.Scheduled = append([]ScheduledEvent(nil), sc.Scheduled...)
	for i := range out.Scheduled {
		ev := &out.Scheduled[i]
		if ev.State == "" {
			ev.State = "active"
		}
		if ev.EventID == "" {
			ev.EventID = fmt.Sprintf("instance-event-%017d", i+1)
		}
		if ev.Description == "" {
			ev.Description = "simulated " + ev.Code
		}
	}
	out.Faults = append([]Fault(nil), sc.Faults...)
	for i := range out.Faults {
		f := &out.Faults[i]
		if f.Status != 0 && (f.Status < 200 || f.Status > 599) {
			// WriteHeader panics on codes it cannot send; Validate refuses
			// these, NewHandler (which cannot fail) answers 500 instead.
			f.Status = http.StatusInternalServerError
		}
		if f.DripEvery <= 0 {
			f.DripEvery = DefaultDripEvery
		}
	}
	return out
}
