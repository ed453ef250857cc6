package supervisor

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExitMap: ExitMap replaces the child's final status, whether it
// exited, died of a signal or of spotinit's own SIGKILL, once (no chains),
// and says so in one INFO line; the stop report's code is the mapped one.
func TestExitMap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		m      map[int]int
		child  fakeProc
		events []event
		code   int
		mapped string // the mapping's log line; "": none
	}{
		{
			name: "143 from a clean SIGTERM becomes 0", m: map[int]int{143: 0},
			child: fakeProc{onTerm: "exit"}, events: []event{sigAt(sec, syscall.SIGTERM)},
			code: 0, mapped: `level=INFO msg="exit status mapped" from=143 to=0`,
		},
		{
			name: "137 from spotinit's own SIGKILL is mapped too", m: map[int]int{137: 0},
			events: []event{sigAt(sec, syscall.SIGTERM)},
			code:   0, mapped: `msg="exit status mapped" from=137 to=0`,
		},
		{
			name: "an exit code", m: map[int]int{3: 0, 143: 0},
			events: []event{exits(sec, 3)},
			code:   0, mapped: `msg="exit status mapped" from=3 to=0`,
		},
		{
			name: "a status not in the map is kept", m: map[int]int{143: 0},
			events: []event{exits(sec, 3)}, code: 3,
		},
		{
			name: "no chains: 143:0 and 0:1 map 143 to 0", m: map[int]int{143: 0, 0: 1},
			child: fakeProc{onTerm: "exit"}, events: []event{sigAt(sec, syscall.SIGTERM)},
			code: 0, mapped: `msg="exit status mapped" from=143 to=0`,
		},
		{
			name: "a status mapped to itself says nothing", m: map[int]int{3: 3},
			events: []event{exits(sec, 3)}, code: 3,
		},
		{
			name: "no map", events: []event{exits(sec, 143)}, code: 143,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{StopTimeout: 30 * sec, KillMargin: 2 * sec, ExitMap: tc.m}, tc.child)
			h.play(tc.events)
			res := h.runOut()
			if res.Code != tc.code {
				t.Errorf("code %d, want %d", res.Code, tc.code)
			}
			logs := h.log.String()
			if n := strings.Count(logs, "exit status mapped"); tc.mapped == "" && n != 0 || tc.mapped != "" && n != 1 {
				t.Errorf("%d lines say the status was mapped; want %v", n, tc.mapped != "")
			}
			if tc.mapped != "" && !strings.Contains(logs, tc.mapped) {
				t.Errorf("no log line with %q", tc.mapped)
			}
			// The report keeps the child's own status; its code, spotinit's,
			// is Result.Code (main writes the report: exit_map.txtar).
			if !res.Report.ChildExited || res.Report.ChildCode == tc.code && tc.mapped != "" {
				t.Errorf("the report's child status is %d (exited %v): want the unmapped one", res.Report.ChildCode, res.Report.ChildExited)
			}
			if t.Failed() {
				t.Logf("log:\n%s", logs)
			}
		})
	}
}

// TestForwardDelayReport: the stop report says how long the forward delay
// held the child's stop signal: all of it, or until the child exited.
func TestForwardDelayReport(t *testing.T) {
	for _, tc := range []struct {
		name   string
		child  fakeProc
		events []event
		want   time.Duration
	}{
		{"held for the whole delay", fakeProc{onTerm: "exit"}, []event{sigAt(10*sec, syscall.SIGTERM)}, 5 * sec},
		{"the child exits during the delay", fakeProc{}, []event{sigAt(10*sec, syscall.SIGTERM), exits(12*sec, 0)}, 2 * sec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{StopTimeout: 30 * sec, KillMargin: 2 * sec, ForwardDelay: 5 * sec}, tc.child)
			h.play(tc.events)
			if got := h.runOut().Report.ForwardDelay; got != tc.want {
				t.Errorf("report's forward delay %v, want %v; log:\n%s", got, tc.want, h.log.String())
			}
		})
	}
	h := newHarness(t, Config{StopTimeout: 30 * sec, KillMargin: 2 * sec}, fakeProc{onTerm: "exit"})
	h.play([]event{sigAt(10*sec, syscall.SIGTERM)})
	if got := h.runOut().Report.ForwardDelay; got != 0 {
		t.Errorf("no --forward-delay: report's forward delay %v, want none", got)
	}
}

func TestParseExitMap(t *testing.T) {
	for _, tc := range []struct {
		spec     string
		from, to int
		err      string
	}{
		{spec: "143:0", from: 143, to: 0},
		{spec: " 0 : 255 ", from: 0, to: 255},
		{spec: "137:1", from: 137, to: 1},
		{spec: "143", err: `exit map "143": want FROM:TO, like 143:0`},
		{spec: "256:0", err: `exit map "256:0": "256" is not an exit status from 0 to 255`},
		{spec: "143:-1", err: `"-1" is not an exit status from 0 to 255`},
		{spec: "TERM:0", err: `"TERM" is not an exit status`},
		{spec: ":0", err: `"" is not an exit status`},
		{spec: "143:0:1", err: `"0:1" is not an exit status`},
	} {
		from, to, err := ParseExitMap(tc.spec)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.spec, err)
		case tc.err == "" && (from != tc.from || to != tc.to):
			t.Errorf("%q: got %d:%d, want %d:%d", tc.spec, from, to, tc.from, tc.to)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one with %q", tc.spec, err, tc.err)
		}
	}
}

// TestValidateForwardDelayAndExitMap: a forward delay the stop can never
// honour, and statuses out of range, are refused before anything starts.
func TestValidateForwardDelayAndExitMap(t *testing.T) {
	base := Config{Argv: []string{"/app"}, StopTimeout: 30 * sec, KillMargin: 2 * sec, procs: &world{}}
	for _, tc := range []struct {
		name  string
		delay time.Duration
		m     map[int]int
		err   string
	}{
		{name: "the longest delay: 28s less 5s", delay: 23 * sec},
		{name: "longer", delay: 23*sec + ms, err: "forward delay 23.001s must be at most 23s, which leaves the child 5s of the stop timeout 30s less the kill margin 2s"},
		{name: "negative", delay: -sec, err: "must not be negative"},
		{name: "statuses 0-255", m: map[int]int{0: 255, 255: 0}},
		{name: "a status above 255", m: map[int]int{256: 0}, err: "exit map 256:0: statuses are 0-255"},
		{name: "a negative status", m: map[int]int{1: -1}, err: "statuses are 0-255"},
	} {
		cfg := base
		cfg.ForwardDelay, cfg.ExitMap = tc.delay, tc.m
		err := cfg.Validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.err)
		}
	}
	for _, tc := range []struct{ stop, margin, want time.Duration }{
		{30 * sec, 2 * sec, 23 * sec},   // 28s - 5s
		{10 * sec, 2 * sec, 6 * sec},    // 8s - 8s/4
		{120 * sec, 5 * sec, 110 * sec}, // 115s - 5s
		{2 * sec, 0, 1500 * ms},
	} {
		if got := MaxForwardDelay(tc.stop, tc.margin); got != tc.want {
			t.Errorf("MaxForwardDelay(%s, %s) = %s, want %s", tc.stop, tc.margin, got, tc.want)
		}
	}
}
