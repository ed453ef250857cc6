package supervisor

import (
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spotinit/spotinit/earlysignal"
	"github.com/spotinit/spotinit/hooks"
)

const (
	sec = time.Second
	ms  = time.Millisecond
)

// TestDeadlines has a row for each formula of the shutdown arithmetic in
// the package doc, run on the fake clock against a fake process tree. Times
// are counted from the child's start. The child ignores SIGTERM and dies of
// SIGKILL at once unless a row says otherwise.
func TestDeadlines(t *testing.T) {
	for _, tc := range []struct {
		name         string
		stop, margin time.Duration
		hooks        bool // one pre-stop hook, which runs until a hooksEnd event
		parallel     bool
		stopOnNotice bool
		delay        time.Duration // ForwardDelay
		child        fakeProc
		desc         []fakeProc
		events       []event

		deadline  string   // the stop (or drain) deadline that was set, or "none"
		hookEnd   string   // the deadline the pre-stop hooks were given
		childGot  []string // signals the child received, among others
		childNot  []string // signals the child must not have received
		descGot   []string // signals the first other descendant received, among others
		end       string   // when the run ended
		code      int
		killed    bool
		report    string   // the report's summary (see summary); "": not checked
		errorLine string   // what the one ERROR line says; "": none
		logs      []string // what other log lines must say
	}{
		// deadline = first stop signal + StopTimeout - KillMargin
		{
			name: "stop signal", stop: 30 * sec, margin: 2 * sec,
			events:   []event{sigAt(10*sec, syscall.SIGTERM)},
			deadline: "38s", childGot: []string{"10s SIGTERM", "10s SIGCONT", "38s SIGKILL"},
			end: "38s", code: 137, killed: true, logs: []string{`msg="deadline reached, sent SIGKILL" pid=100 waited=28s`},
			report: "trigger=SIGTERM lead=28s child=137/SIGKILL killed_child=true descendants=0 left=none",
		},
		{
			name: "what lives beside the child at the deadline is killed and counted", stop: 30 * sec, margin: 2 * sec,
			desc:     []fakeProc{{name: "d1"}},
			events:   []event{sigAt(10*sec, syscall.SIGTERM)},
			deadline: "38s", childGot: []string{"38s SIGKILL"}, descGot: []string{"38s SIGKILL"}, end: "38s", code: 137, killed: true,
			report: "trigger=SIGTERM lead=28s child=137/SIGKILL killed_child=true descendants=1 left=none",
		},
		{
			name: "SIGINT is a stop signal", stop: 30 * sec, margin: 2 * sec,
			events:   []event{sigAt(10*sec, syscall.SIGINT)},
			deadline: "38s", childGot: []string{"10s SIGINT", "38s SIGKILL"}, end: "38s", code: 137, killed: true,
		},
		{
			name: "a second TERM is forwarded and does not move the deadline", stop: 30 * sec, margin: 2 * sec,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), sigAt(20*sec, syscall.SIGTERM)},
			deadline: "38s", childGot: []string{"10s SIGTERM", "20s SIGTERM", "38s SIGKILL"}, end: "38s", code: 137, killed: true,
		},
		{
			name: "a child that exits on its TERM is not killed", stop: 30 * sec, margin: 2 * sec,
			child:    fakeProc{onTerm: "exit"},
			events:   []event{sigAt(10*sec, syscall.SIGTERM)},
			deadline: "38s", childNot: []string{"38s SIGKILL"}, end: "10s", code: 143,
			report: "trigger=SIGTERM lead=28s child=143/SIGTERM killed_child=false descendants=0 left=28s",
		},

		// deadline = min(deadline, notice deadline - KillMargin)
		{
			name: "a notice caps the stop deadline", stop: 30 * sec, margin: 2 * sec,
			events:   []event{notice(5*sec, 25*sec), sigAt(10*sec, syscall.SIGTERM)},
			deadline: "23s", childGot: []string{"10s SIGTERM", "23s SIGKILL"}, end: "23s", code: 137, killed: true,
			report: "trigger=spot-interruption/terminate lead=20s child=137/SIGKILL killed_child=true descendants=0 left=none",
		},
		{
			name: "a notice after the stop signal pulls its deadline in", stop: 30 * sec, margin: 2 * sec,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), notice(12*sec, 30*sec)},
			deadline: "28s", childGot: []string{"28s SIGKILL"}, end: "28s", code: 137, killed: true,
		},
		{
			name: "a notice later than the stop deadline leaves it", stop: 30 * sec, margin: 2 * sec,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), notice(12*sec, 60*sec)},
			deadline: "38s", childGot: []string{"38s SIGKILL"}, end: "38s", code: 137, killed: true,
		},
		{
			name: "a notice update moves the deadline earlier", stop: 30 * sec, margin: 2 * sec,
			events:   []event{notice(5*sec, 60*sec), sigAt(10*sec, syscall.SIGTERM), update(12*sec, 35*sec)},
			deadline: "33s", childGot: []string{"33s SIGKILL"}, end: "33s", code: 137, killed: true,
		},
		{
			name: "a notice update never moves the deadline later", stop: 30 * sec, margin: 2 * sec,
			events:   []event{notice(5*sec, 30*sec), sigAt(10*sec, syscall.SIGTERM), update(12*sec, 90*sec)},
			deadline: "28s", childGot: []string{"28s SIGKILL"}, end: "28s", code: 137, killed: true,
		},

		// deadline = max(deadline, stop start + min(1s, StopTimeout - KillMargin))
		{
			name: "a notice deadline already past still leaves the child a moment", stop: 30 * sec, margin: 2 * sec,
			events:   []event{notice(5*sec, 4*sec), sigAt(10*sec, syscall.SIGTERM)},
			deadline: "11s", childGot: []string{"10s SIGTERM", "11s SIGKILL"}, end: "11s", code: 137, killed: true,
		},
		{
			name: "the moment is at most StopTimeout - KillMargin", stop: 500 * ms, margin: 100 * ms,
			events:   []event{notice(5*sec, 4*sec), sigAt(10*sec, syscall.SIGTERM)},
			deadline: "10.4s", childGot: []string{"10s SIGTERM", "10.4s SIGKILL"}, end: "10.4s", code: 137, killed: true,
		},

		// deadline = min(notice deadline, hooks' end + StopTimeout) - KillMargin
		{
			name: "stop on notice, no hooks: StopTimeout is the nearer", stop: 30 * sec, margin: 2 * sec, stopOnNotice: true,
			events:   []event{notice(10*sec, 130*sec)},
			deadline: "38s", childGot: []string{"10s SIGTERM", "38s SIGKILL"}, end: "38s", code: 137, killed: true,
		},
		{
			name: "stop on notice, no hooks: the notice deadline is the nearer", stop: 30 * sec, margin: 2 * sec, stopOnNotice: true,
			events:   []event{notice(10*sec, 25*sec)},
			deadline: "23s", childGot: []string{"10s SIGTERM", "23s SIGKILL"}, end: "23s", code: 137, killed: true,
		},
		{
			name: "stop on notice after the hooks", stop: 30 * sec, margin: 2 * sec, stopOnNotice: true, hooks: true,
			events: []event{notice(10*sec, 130*sec), hooksEnd(20 * sec)},
			// The hooks: d = 130s - 2s; d - reserve(d - 10s) = 128s - 5s.
			deadline: "48s", hookEnd: "2m3s", childGot: []string{"20s SIGTERM", "48s SIGKILL"}, childNot: []string{"10s SIGTERM"},
			end: "48s", code: 137, killed: true,
		},
		{
			name: "stop on notice after the hooks: the notice deadline is the nearer", stop: 30 * sec, margin: 2 * sec, stopOnNotice: true, hooks: true,
			events:   []event{notice(10*sec, 40*sec), hooksEnd(30 * sec)},
			deadline: "38s", hookEnd: "33s", childGot: []string{"30s SIGTERM", "38s SIGKILL"}, end: "38s", code: 137, killed: true,
		},

		// hooks' deadline = deadline - reserve, reserve = min(5s, budget/4)
		{
			name: "hooks before the child keep 5s of a long budget for it", stop: 30 * sec, margin: 2 * sec, hooks: true,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), hooksEnd(15 * sec)},
			deadline: "38s", hookEnd: "33s", childGot: []string{"15s SIGTERM", "15s SIGCONT", "38s SIGKILL"}, childNot: []string{"10s SIGTERM"},
			end: "38s", code: 137, killed: true,
		},
		{
			name: "hooks before the child keep a quarter of a short budget for it", stop: 10 * sec, margin: 2 * sec, hooks: true,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), hooksEnd(16 * sec)},
			deadline: "18s", hookEnd: "16s", childGot: []string{"16s SIGTERM", "18s SIGKILL"}, end: "18s", code: 137, killed: true,
		},
		{
			name: "a second TERM while the hooks run is held for them", stop: 30 * sec, margin: 2 * sec, hooks: true,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), sigAt(12*sec, syscall.SIGTERM), hooksEnd(15 * sec)},
			deadline: "38s", hookEnd: "33s", childGot: []string{"15s SIGTERM"}, childNot: []string{"12s SIGTERM"},
			end: "38s", code: 137, killed: true,
		},
		{
			name: "parallel hooks: the child is signalled at once, the hooks get the whole budget", stop: 30 * sec, margin: 2 * sec, hooks: true, parallel: true,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), hooksEnd(12 * sec)},
			deadline: "38s", hookEnd: "38s", childGot: []string{"10s SIGTERM", "38s SIGKILL"}, end: "38s", code: 137, killed: true,
		},
		{
			name: "parallel hooks outlive a child that exits on its TERM: the run waits for them", stop: 30 * sec, margin: 2 * sec, hooks: true, parallel: true,
			child:    fakeProc{onTerm: "exit"},
			events:   []event{sigAt(10*sec, syscall.SIGTERM), hooksEnd(15 * sec)},
			deadline: "38s", hookEnd: "38s", childGot: []string{"10s SIGTERM"}, end: "15s", code: 143,
		},
		{
			name: "hooks run by a notice keep the child's reserve", stop: 30 * sec, margin: 2 * sec, hooks: true,
			events: []event{notice(10*sec, 130*sec), hooksEnd(20 * sec), sigAt(30*sec, syscall.SIGTERM)},
			// The stop signal after the hooks: min(30s + 28s, 130s - 2s).
			deadline: "58s", hookEnd: "2m3s", childGot: []string{"30s SIGTERM", "58s SIGKILL"}, end: "58s", code: 137, killed: true,
		},
		{
			name: "hooks run by a notice already past still get a moment", stop: 30 * sec, margin: 2 * sec, hooks: true,
			child:    fakeProc{onTerm: "exit"},
			events:   []event{notice(10*sec, 9*sec), hooksEnd(10500 * ms), exits(12*sec, 0)},
			deadline: "none", hookEnd: "11s", end: "12s", code: 0,
		},

		// child's signal = min(from + ForwardDelay, deadline - reserve(deadline - stop start)),
		// from = the hooks' end when they run first, else the stop start.
		{
			name: "forward delay: the child's signal waits after the stop signal", stop: 30 * sec, margin: 2 * sec, delay: 10 * sec,
			events:   []event{sigAt(10*sec, syscall.SIGTERM)},
			deadline: "38s", childGot: []string{"20s SIGTERM", "20s SIGCONT", "38s SIGKILL"}, childNot: []string{"10s SIGTERM", "10s SIGCONT"},
			end: "38s", code: 137, killed: true,
			logs: []string{`msg="stop signal delayed" pid=100 signal=SIGTERM delay=10s`,
				`msg="forward delay over, child signalled" pid=100 signal=SIGTERM waited=10s`},
		},
		{
			name: "forward delay: counted from the hooks' end", stop: 30 * sec, margin: 2 * sec, hooks: true, delay: 5 * sec,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), hooksEnd(15 * sec)},
			deadline: "38s", hookEnd: "33s", childGot: []string{"20s SIGTERM", "38s SIGKILL"}, childNot: []string{"10s SIGTERM", "15s SIGTERM"},
			end: "38s", code: 137, killed: true,
		},
		{
			name: "forward delay: hooks that end late leave the child its 5s", stop: 30 * sec, margin: 2 * sec, hooks: true, delay: 10 * sec,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), hooksEnd(30 * sec)},
			deadline: "38s", hookEnd: "33s", childGot: []string{"33s SIGTERM", "38s SIGKILL"}, childNot: []string{"40s SIGTERM"},
			end: "38s", code: 137, killed: true,
		},
		{
			name: "forward delay: hooks that end at their deadline: the signal goes at once", stop: 10 * sec, margin: 2 * sec, hooks: true, delay: 5 * sec,
			events: []event{sigAt(10*sec, syscall.SIGTERM), hooksEnd(16 * sec)},
			// deadline 18s, reserve(8s) = 2s: the hooks and the delay end by 16s.
			deadline: "18s", hookEnd: "16s", childGot: []string{"16s SIGTERM", "18s SIGKILL"},
			end: "18s", code: 137, killed: true, logs: []string{`msg="forward delay over, child signalled" pid=100 signal=SIGTERM waited=0s`},
		},
		{
			name: "forward delay: a notice that pulls the deadline in pulls the signal in", stop: 30 * sec, margin: 2 * sec, delay: 20 * sec,
			events: []event{sigAt(10*sec, syscall.SIGTERM), notice(12*sec, 25*sec)},
			// deadline 25s - 2s = 23s; 23s - reserve(13s) = 23s - 3.25s.
			deadline: "23s", childGot: []string{"19.75s SIGTERM", "23s SIGKILL"}, childNot: []string{"30s SIGTERM"},
			end: "23s", code: 137, killed: true,
		},
		{
			name: "forward delay: a deadline already past leaves the child a quarter of its moment", stop: 30 * sec, margin: 2 * sec, delay: 5 * sec,
			events:   []event{notice(5*sec, 4*sec), sigAt(10*sec, syscall.SIGTERM)},
			deadline: "11s", childGot: []string{"10.75s SIGTERM", "11s SIGKILL"}, end: "11s", code: 137, killed: true,
		},
		{
			name: "forward delay: a second stop signal ends it; the child gets the first only, a third is forwarded", stop: 30 * sec, margin: 2 * sec, delay: 10 * sec,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), sigAt(12*sec, syscall.SIGINT), sigAt(14*sec, syscall.SIGTERM)},
			deadline: "38s", childGot: []string{"12s SIGTERM", "12s SIGCONT", "14s SIGTERM", "38s SIGKILL"}, childNot: []string{"12s SIGINT", "20s SIGTERM"},
			end: "38s", code: 137, killed: true,
			logs: []string{`msg="forward delay over, child signalled" pid=100 signal=SIGTERM waited=2s by=SIGINT`},
		},
		{
			name: "forward delay: a second stop signal during the hooks is held; the delay follows them", stop: 30 * sec, margin: 2 * sec, hooks: true, delay: 5 * sec,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), sigAt(12*sec, syscall.SIGTERM), hooksEnd(15 * sec)},
			deadline: "38s", hookEnd: "33s", childGot: []string{"20s SIGTERM"}, childNot: []string{"12s SIGTERM", "15s SIGTERM"},
			end: "38s", code: 137, killed: true,
		},
		{
			name: "forward delay with parallel hooks: counted from the stop signal, the hooks get the whole budget", stop: 30 * sec, margin: 2 * sec, hooks: true, parallel: true, delay: 5 * sec,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), hooksEnd(12 * sec)},
			deadline: "38s", hookEnd: "38s", childGot: []string{"15s SIGTERM", "38s SIGKILL"}, childNot: []string{"10s SIGTERM", "12s SIGTERM"},
			end: "38s", code: 137, killed: true,
		},
		{
			name: "forward delay with parallel hooks that outlast it", stop: 30 * sec, margin: 2 * sec, hooks: true, parallel: true, delay: 5 * sec,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), hooksEnd(20 * sec)},
			deadline: "38s", hookEnd: "38s", childGot: []string{"15s SIGTERM", "38s SIGKILL"}, childNot: []string{"20s SIGTERM"},
			end: "38s", code: 137, killed: true,
		},
		{
			name: "forward delay on a notice stop: after the hooks", stop: 30 * sec, margin: 2 * sec, stopOnNotice: true, hooks: true, delay: 5 * sec,
			events:   []event{notice(10*sec, 130*sec), hooksEnd(20 * sec)},
			deadline: "48s", hookEnd: "2m3s", childGot: []string{"25s SIGTERM", "48s SIGKILL"}, childNot: []string{"20s SIGTERM"},
			end: "48s", code: 137, killed: true,
		},
		{
			name: "forward delay: a child that exits meanwhile gets nothing more", stop: 30 * sec, margin: 2 * sec, delay: 10 * sec,
			events:   []event{sigAt(10*sec, syscall.SIGTERM), exits(15*sec, 0)},
			deadline: "38s", childNot: []string{"10s SIGTERM", "20s SIGTERM"}, end: "15s", code: 0,
		},

		// grace after SIGKILL = max(KillMargin/2, 1s), ended by the reaper's
		// report of the child: the exit reported is always the real one.
		{
			name: "margin 0: the child's report after SIGKILL is waited for", stop: 30 * sec, margin: 0,
			child:    fakeProc{onKill: "zombie"},
			events:   []event{sigAt(0, syscall.SIGTERM), reaped(30*sec + 5*ms)},
			deadline: "30s", childGot: []string{"30s SIGKILL"}, end: "30.005s", code: 137, killed: true,
			logs:   []string{`msg="child exited" pid=100 signal=SIGKILL code=137`},
			report: "trigger=SIGTERM lead=30s child=137/SIGKILL killed_child=true descendants=0 left=none",
		},
		{
			name: "margin 0: a last reap at the end of the grace finds the child", stop: 30 * sec, margin: 0,
			child:    fakeProc{onKill: "zombie"},
			events:   []event{sigAt(0, syscall.SIGTERM)},
			deadline: "30s", end: "31s", code: 137, killed: true,
			report: "trigger=SIGTERM lead=30s child=137/SIGKILL killed_child=true descendants=0 left=none",
		},
		{
			name: "margin 0: a child stuck in uninterruptible sleep is named with its state", stop: 30 * sec, margin: 0,
			child:    fakeProc{onKill: "stuck"},
			events:   []event{sigAt(0, syscall.SIGTERM)},
			deadline: "30s", end: "31s", code: 137, killed: true,
			errorLine: `msg="child did not exit after SIGKILL" pid=100 state="D (disk sleep)"`,
			report:    "trigger=SIGTERM lead=30s child=unknown killed_child=true descendants=0 left=none",
		},
		{
			name: "the grace is the floor at the default margin", stop: 30 * sec, margin: 2 * sec,
			child:    fakeProc{onKill: "stuck"},
			events:   []event{sigAt(10*sec, syscall.SIGTERM)},
			deadline: "38s", end: "39s", code: 137, killed: true, errorLine: `state="D (disk sleep)"`,
		},
		{
			name: "the grace is half the margin above the floor", stop: 30 * sec, margin: 10 * sec,
			child:    fakeProc{onKill: "stuck"},
			events:   []event{sigAt(0, syscall.SIGTERM)},
			deadline: "20s", end: "25s", code: 137, killed: true, errorLine: `state="D (disk sleep)"`,
		},
		{
			name: "the descendants get the same grace after SIGKILL", stop: 30 * sec, margin: 0,
			desc:     []fakeProc{{name: "d1", onKill: "stuck"}},
			events:   []event{exits(10*sec, 0)},
			deadline: "40s", descGot: []string{"40s SIGKILL"}, end: "41s", code: 0, killed: true,
			// Still listed after its SIGKILL, scan after scan: counted once.
			logs:   []string{`msg="deadline reached, killed descendants" count=1`, `msg="descendants left after SIGKILL" count=1`},
			report: "trigger=child-exit lead=none child=0 killed_child=false descendants=1 left=none",
		},
		{
			name: "descendants reported within the grace end the run", stop: 30 * sec, margin: 0,
			desc:     []fakeProc{{name: "d1", onKill: "zombie"}},
			events:   []event{exits(10*sec, 0), reaped(40*sec + 5*ms)},
			deadline: "40s", descGot: []string{"40s SIGKILL"}, end: "40.005s", code: 0, killed: true,
		},

		// The rest of the tree after the child: child's exit + StopTimeout -
		// KillMargin when no stop is running, capped by a notice deadline.
		{
			name: "descendants get StopTimeout - KillMargin from the child's exit", stop: 30 * sec, margin: 2 * sec,
			desc:     []fakeProc{{name: "d1"}},
			events:   []event{exits(10*sec, 3)},
			deadline: "38s", descGot: []string{"10s SIGTERM", "10s SIGCONT", "38s SIGKILL"}, end: "38s", code: 3, killed: true,
			logs:   []string{`msg="deadline reached, killed descendants" count=1`},
			report: "trigger=child-exit lead=none child=3 killed_child=false descendants=1 left=none",
		},
		{
			name: "a notice caps the descendants' deadline", stop: 30 * sec, margin: 2 * sec,
			desc:     []fakeProc{{name: "d1"}},
			events:   []event{notice(5*sec, 20*sec), exits(10*sec, 0)},
			deadline: "18s", descGot: []string{"10s SIGTERM", "18s SIGKILL"}, end: "18s", code: 0, killed: true,
		},
		{
			name: "a running stop keeps its deadline for the descendants", stop: 30 * sec, margin: 2 * sec,
			child:    fakeProc{onTerm: "exit"},
			desc:     []fakeProc{{name: "d1"}},
			events:   []event{sigAt(10*sec, syscall.SIGTERM), exits(15*sec, 0)},
			deadline: "38s", descGot: []string{"10s SIGTERM", "38s SIGKILL"}, end: "38s", code: 143, killed: true,
			report: "trigger=SIGTERM lead=28s child=143/SIGTERM killed_child=false descendants=1 left=28s",
		},
		{
			name: "descendants that go on their TERM end the run", stop: 30 * sec, margin: 2 * sec,
			desc:     []fakeProc{{name: "d1", onTerm: "exit"}},
			events:   []event{exits(10*sec, 0)},
			deadline: "38s", descGot: []string{"10s SIGTERM"}, end: "10s", code: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{StopTimeout: tc.stop, KillMargin: tc.margin, StopOnNotice: tc.stopOnNotice, PreStopParallel: tc.parallel,
				ForwardDelay: tc.delay}
			if tc.hooks {
				cfg.PreStop = hooks.Commands("pre-stop", []string{"true"})
			}
			h := newHarness(t, cfg, tc.child, tc.desc...)
			h.play(tc.events)
			res := h.runOut()

			deadline := "none"
			if !h.s.deadline.IsZero() {
				deadline = h.w.since(h.s.deadline)
			}
			if deadline != tc.deadline {
				t.Errorf("deadline %s, want %s", deadline, tc.deadline)
			}
			if tc.hooks {
				if want := []string{tc.hookEnd}; !slices.Equal(h.w.hooks, want) {
					t.Errorf("hooks' deadlines %q, want %q", h.w.hooks, want)
				}
			}
			got := h.received("child")
			for _, w := range tc.childGot {
				if !slices.Contains(got, w) {
					t.Errorf("the child did not receive %q; it received %q", w, got)
				}
			}
			for _, w := range tc.childNot {
				if slices.Contains(got, w) {
					t.Errorf("the child received %q; it received %q", w, got)
				}
			}
			if len(tc.desc) > 0 {
				got := h.received(tc.desc[0].name)
				for _, w := range tc.descGot {
					if !slices.Contains(got, w) {
						t.Errorf("%s did not receive %q; it received %q", tc.desc[0].name, w, got)
					}
				}
			}
			if end := h.end.String(); end != tc.end {
				t.Errorf("run ended at %s, want %s", end, tc.end)
			}
			if res.Code != tc.code || res.Killed != tc.killed || res.Pid != 100 {
				t.Errorf("Result %+v, want code %d, killed %v", res, tc.code, tc.killed)
			}
			checkReport(t, res)
			if got := summary(res.Report); tc.report != "" && got != tc.report {
				t.Errorf("report %s, want %s", got, tc.report)
			}
			logs := h.log.String()
			var errs []string
			for _, l := range strings.Split(logs, "\n") {
				if strings.Contains(l, "level=ERROR") {
					errs = append(errs, l)
				}
			}
			switch {
			case tc.errorLine == "" && len(errs) > 0:
				t.Errorf("unexpected ERROR lines: %q", errs)
			case tc.errorLine != "" && (len(errs) != 1 || !strings.Contains(errs[0], tc.errorLine)):
				t.Errorf("ERROR lines %q, want one with %q", errs, tc.errorLine)
			}
			for _, l := range tc.logs {
				if !strings.Contains(logs, l) {
					t.Errorf("no log line with %q", l)
				}
			}
			if t.Failed() {
				t.Logf("log:\n%s", logs)
			}
		})
	}
}

// TestForwarding: every signal the table forwards reaches the child, the
// job-control stops stop spotinit too, and nothing else is forwarded
// (above all SIGURG, SIGCHLD and SIGPIPE).
func TestForwarding(t *testing.T) {
	for n := 1; n <= 64; n++ {
		sig := syscall.Signal(n)
		if isStop(sig) || sig == syscall.SIGKILL || sig == syscall.SIGSTOP {
			continue // the stop sequence has its own rows; these two cannot be caught
		}
		h := newHarness(t, Config{StopTimeout: 30 * sec, KillMargin: 2 * sec}, fakeProc{})
		h.play([]event{sigAt(sec, sig)})
		name := SignalName(sig)
		got := slices.Contains(h.received("child"), "1s "+name)
		if want := earlysignal.Is(sig, earlysignal.Forwarded); got != want {
			t.Errorf("%s forwarded: %v, want %v", name, got, want)
		}
		stopped := slices.Contains(h.received("self"), "1s SIGSTOP")
		if want := earlysignal.Is(sig, earlysignal.JobStop); stopped != want {
			t.Errorf("%s stopped spotinit: %v, want %v", name, stopped, want)
		}
		if sig == syscall.SIGURG || sig == syscall.SIGCHLD || sig == syscall.SIGPIPE {
			if got {
				t.Errorf("%s was forwarded", name)
			}
		}
		h.play([]event{exits(2*sec, 0)})
		h.runOut()
	}
}
