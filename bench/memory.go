package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/spotinit/spotinit/simulator"
)

// fake is a simulator handler served on 127.0.0.1 by the bench itself, so
// that the bench knows the exact moment the scenario started and sees every
// poll of spot/instance-action.
type fake struct {
	url       string
	startMono int64 // CLOCK_MONOTONIC of the scenario's start
	srv       *http.Server
	done      chan struct{}

	mu       sync.Mutex
	spotGets []int64 // arrival of each GET of the Spot path
	first200 int64   // arrival of the first GET of it answered 200
}

func startFake(sc simulator.Scenario) (*fake, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	start := time.Now()
	f := &fake{url: "http://" + ln.Addr().String(), startMono: mono(), done: make(chan struct{})}
	h := simulator.NewHandler(sc, start, nil)
	f.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t := mono()
			if r.Method != http.MethodGet || r.URL.Path != simulator.SpotPath {
				h.ServeHTTP(w, r)
				return
			}
			rec := &statusRecorder{ResponseWriter: w}
			h.ServeHTTP(rec, r)
			f.mu.Lock()
			f.spotGets = append(f.spotGets, t)
			if f.first200 == 0 && (rec.status == http.StatusOK || rec.status == 0) {
				f.first200 = t
			}
			f.mu.Unlock()
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(f.done)
		_ = f.srv.Serve(ln) // ErrServerClosed after close
	}()
	return f, nil
}

func (f *fake) close() {
	_ = f.srv.Close()
	<-f.done
}

// polls returns the arrival times of the Spot polls and of the first 200.
func (f *fake) polls() ([]int64, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.spotGets...), f.first200
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// spotIMDS are spotinit's options to poll the fake at url.
func spotIMDS(url string, poll time.Duration, more ...string) []string {
	o := []string{"--imds", "on", "--imds-endpoint", url, "--imds-poll-interval", poll.String()}
	return append(o, more...)
}

// sleepCtx sleeps for d or until ctx is done, and reports whether it slept.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// idleKey names one column cell of the idle rows.
type idleKey struct {
	init string
	mode mode
	imds bool
}

type idleAcc struct {
	cpu, wake, anon, pss, rss, threads, perPoll []float64
}

// The memory goals, in KiB of anonymous memory (what the container pays
// for that no other process shares: see memory).
const (
	anonGoalIdle = 4 * 1024
	anonGoalPoll = 6 * 1024
	// pollCPUGoal is the goal for spotinit's CPU per poll round at the
	// default interval, in ns.
	pollCPUGoal = 1e6
)

// figIdle: every init in both modes, each with a sleeping child, all at
// once for the same window: CPU and context switches over the window, then
// anonymous memory, PSS and RSS. spotinit also runs polling a local fake
// IMDS every 2 s, and its CPU per poll round is counted.
func (b *bench) figIdle(ctx context.Context) {
	ph := startPhase()
	acc := map[idleKey]*idleAcc{}
	for run := 0; run < b.cfg.idleRuns && ctx.Err() == nil; run++ {
		b.idleRun(ctx, acc)
	}
	load := ph.load()
	secs := b.cfg.idle.Seconds()
	wakeGoal := 10 * secs / 10
	type line struct {
		seq  int
		m    mode
		imds bool
		what string
	}
	lines := []line{
		{0, pid1, false, "IMDS off"},
		{1, plain, false, "IMDS off"},
		{2, pid1, true, "IMDS polling a local fake every 2 s"},
	}
	for _, l := range lines {
		mem := row{order: rowOrder("idle", l.seq), figure: fmt.Sprintf("anonymous / PSS / RSS (threads), child sleeping, %s, %s", l.what, l.m), cells: map[string]string{}, load: load}
		idle := row{order: rowOrder("idle", 10+l.seq), figure: fmt.Sprintf("idle CPU / wake-ups in %s, %s, %s", b.cfg.idle, l.what, l.m), cells: map[string]string{}, load: load}
		if l.imds {
			idle.figure = fmt.Sprintf("CPU / wake-ups in %s, CPU per poll round, %s, %s", b.cfg.idle, l.what, l.m)
		}
		for k, a := range acc {
			if k.mode != l.m || k.imds != l.imds || len(a.rss) == 0 {
				continue
			}
			mem.cells[k.init] = fmt.Sprintf("%s (%.0f)", fmtMem(memory{anon: int64(median(a.anon)), pss: int64(median(a.pss)), rss: int64(median(a.rss))}), median(a.threads))
			idle.cells[k.init] = fmt.Sprintf("%s / %.0f", fmtNs(median(a.cpu)), median(a.wake))
			if k.init != "spotinit" || k.mode != pid1 {
				continue
			}
			if k.imds {
				mem.goal = fmt.Sprintf("anonymous ≤ %.0f MiB", anonGoalPoll/1024.0)
				mem.result = verdict(median(a.anon) <= anonGoalPoll)
				if len(a.perPoll) > 0 {
					idle.cells[k.init] += fmt.Sprintf(" / %s per round", fmtNs(median(a.perPoll)))
					idle.goal = fmt.Sprintf("≤ %s per poll round", fmtNs(pollCPUGoal))
					idle.result = verdict(median(a.perPoll) <= pollCPUGoal)
				}
			} else {
				mem.goal = fmt.Sprintf("anonymous ≤ %.0f MiB", anonGoalIdle/1024.0)
				mem.result = verdict(median(a.anon) <= anonGoalIdle)
				idle.goal = fmt.Sprintf("≤ %.0f wake-ups", wakeGoal)
				idle.result = verdict(median(a.wake) <= wakeGoal)
			}
		}
		if l.imds {
			for _, s := range b.inits {
				if s.name != "spotinit" && s.ok() {
					mem.cells[s.name] = "no IMDS watching"
					idle.cells[s.name] = "no IMDS watching"
				}
			}
		}
		b.rep.add(mem)
		b.rep.add(idle)
	}
	b.rep.note("Idle and memory: all inits run at once, each with a sleeping child; after 2 s of settling, CPU is the init's CPU time (user + system, every thread: its CPU-time clock) and wake-ups the voluntary plus involuntary context switches summed over its threads (/proc/PID/task/*/status), both over the same %s window; then, from /proc/PID/smaps_rollup, anonymous memory (the Anonymous: line: heap, stacks and written private pages, which no other process shares and the page cache cannot take back: what the container's memory limit pays for the init itself), PSS (resident pages, each divided among the processes that map it) and RSS (every resident page, counted in full even when the page cache shares it). \"Per poll round\": spotinit's CPU over the window divided by the polls of spot/instance-action the fake saw in it (one per round). Medians of %d run(s).", b.cfg.idle, b.cfg.idleRuns)
}

func (b *bench) idleRun(ctx context.Context, acc map[idleKey]*idleAcc) {
	type running struct {
		key   idleKey
		p     *proc
		fake  *fake
		u0    usage
		polls int
		ok    bool
	}
	var rs []*running
	defer func() {
		for _, r := range rs {
			r.p.stop()
			if r.fake != nil {
				r.fake.close()
			}
		}
	}()
	sleeper := b.h.path(hSleeper)
	for _, t := range b.targets(pid1, plain) {
		p, err := b.start(t.init.argv(t.mode, spotOff, sleeper), b.envFor(t.init, baseEnv()), t.mode)
		if err != nil {
			b.logf("idle: %s: %v", t, err)
			continue
		}
		rs = append(rs, &running{key: idleKey{t.init.name, t.mode, false}, p: p})
	}
	for _, t := range b.targets(pid1) {
		if t.init.name != "spotinit" {
			continue
		}
		f, err := startFake(simulator.Scenario{})
		if err != nil {
			b.logf("idle: fake imds: %v", err)
			continue
		}
		p, err := b.start(t.init.argv(t.mode, spotIMDS(f.url, 2*time.Second), sleeper), b.envFor(t.init, imdsEnv(f.url)), t.mode)
		if err != nil {
			f.close()
			b.logf("idle: %s with imds: %v", t, err)
			continue
		}
		rs = append(rs, &running{key: idleKey{t.init.name, t.mode, true}, p: p, fake: f})
	}
	for _, r := range rs {
		if err := r.p.ready(10 * time.Second); err != nil {
			b.logf("idle: %s: %v", r.key.init, err)
			continue
		}
		r.ok = true
	}
	if !sleepCtx(ctx, 2*time.Second) {
		return
	}
	for _, r := range rs {
		if r.ok {
			u, err := readUsage(r.p.pid)
			r.u0, r.ok = u, err == nil
			if r.fake != nil {
				gets, _ := r.fake.polls()
				r.polls = len(gets)
			}
		}
	}
	if !sleepCtx(ctx, b.cfg.idle) {
		return
	}
	for _, r := range rs {
		if !r.ok {
			continue
		}
		u1, err := readUsage(r.p.pid)
		if err != nil {
			continue
		}
		m, err := readMemory(r.p.pid)
		if err != nil {
			continue
		}
		a := acc[r.key]
		if a == nil {
			a = &idleAcc{}
			acc[r.key] = a
		}
		cpu := float64(u1.cpuNs - r.u0.cpuNs)
		a.cpu = append(a.cpu, cpu)
		a.wake = append(a.wake, float64(u1.switches-r.u0.switches))
		a.threads = append(a.threads, float64(u1.threads))
		a.anon = append(a.anon, float64(m.anon))
		a.rss = append(a.rss, float64(m.rss))
		a.pss = append(a.pss, float64(m.pss))
		if r.fake != nil {
			gets, _ := r.fake.polls()
			if n := len(gets) - r.polls; n > 0 {
				a.perPoll = append(a.perPoll, cpu/float64(n))
			}
		}
		if r.u0.threads != u1.threads {
			b.rep.note("Idle: %s (%s) went from %d to %d threads during the window (context switches of threads that exited are not counted).", r.key.init, r.key.mode, r.u0.threads, u1.threads)
		}
	}
}

// figSoak: spotinit as PID 1 polling a local fake IMDS at the default
// interval for cfg.soak, beside the other figures, sampling its memory,
// threads and CPU. spotinit has no debug endpoint, so goroutines cannot be
// counted from outside: the thread count and anonymous memory stand in for
// them.
func (b *bench) figSoak(ctx context.Context) {
	w := row{order: rowOrder("soak", 0), figure: fmt.Sprintf("soak: %s of IMDS polling every 2 s: anonymous memory at 5 s → half-way → end (peak), PSS, RSS, threads; CPU per poll round in the second half", b.cfg.soak), cells: map[string]string{}}
	ph := startPhase()
	defer func() {
		w.load = ph.load()
		b.rep.add(w)
	}()
	for _, s := range b.inits {
		if s.name != "spotinit" && s.ok() {
			w.cells[s.name] = "no IMDS watching"
		}
	}
	var spot *initSpec
	for _, s := range b.inits {
		if s.name == "spotinit" && s.ok() {
			spot = s
		}
	}
	if spot == nil {
		return
	}
	m := pid1
	if !b.canPID1 {
		m = plain
	}
	f, err := startFake(simulator.Scenario{})
	if err != nil {
		w.cells["spotinit"] = "error: " + err.Error()
		return
	}
	defer f.close()
	p, err := b.start(spot.argv(m, spotIMDS(f.url, 2*time.Second), b.h.path(hSleeper)), b.envFor(spot, imdsEnv(f.url)), m)
	if err != nil {
		w.cells["spotinit"] = "error: " + err.Error()
		return
	}
	defer p.stop()
	if err := p.ready(10 * time.Second); err != nil {
		w.cells["spotinit"] = "error: " + err.Error()
		return
	}
	began := time.Now()
	const warmUp = 5 * time.Second
	step := max((b.cfg.soak-warmUp)/40, time.Second)
	type sample struct {
		at      time.Duration
		mem     memory
		threads int
		cpu     int64
		polls   int
	}
	var ss []sample
	next := warmUp // past start-up
	for ctx.Err() == nil {
		if !sleepCtx(ctx, time.Until(began.Add(min(next, b.cfg.soak)))) {
			return
		}
		mem, err := readMemory(p.pid)
		u, uerr := readUsage(p.pid)
		if err != nil || uerr != nil {
			w.cells["spotinit"] = fmt.Sprintf("error: spotinit gone after %s", time.Since(began).Round(time.Second))
			return
		}
		gets, _ := f.polls()
		ss = append(ss, sample{time.Since(began), mem, u.threads, u.cpuNs, len(gets)})
		b.debugf("soak: %s anon %d KiB PSS %d KiB RSS %d KiB threads %d", time.Since(began).Round(time.Second), mem.anon, mem.pss, mem.rss, u.threads)
		if next >= b.cfg.soak {
			break
		}
		next += step
	}
	if len(ss) < 3 {
		w.cells["spotinit"] = "too short: set -soak to at least 10s"
		return
	}
	h := len(ss) / 2
	first, mid, last := ss[0], ss[h], ss[len(ss)-1]
	var peak, peak1, peak2 int64 // anonymous: overall, first half, second half
	for i, s := range ss {
		peak = max(peak, s.mem.anon)
		if i < h {
			peak1 = max(peak1, s.mem.anon)
		} else {
			peak2 = max(peak2, s.mem.anon)
		}
	}
	var perPoll float64 = -1
	if n := last.polls - mid.polls; n > 0 {
		perPoll = float64(last.cpu-mid.cpu) / float64(n)
	}
	w.cells["spotinit"] = fmt.Sprintf("anonymous %s → %s → %s (peak %s), PSS %s → %s → %s, RSS %s → %s → %s, threads %d → %d → %d; %d polls; %s per poll round; %s",
		fmtMiB(float64(first.mem.anon)), fmtMiB(float64(mid.mem.anon)), fmtMiB(float64(last.mem.anon)), fmtMiB(float64(peak)),
		fmtMiB(float64(first.mem.pss)), fmtMiB(float64(mid.mem.pss)), fmtMiB(float64(last.mem.pss)),
		fmtMiB(float64(first.mem.rss)), fmtMiB(float64(mid.mem.rss)), fmtMiB(float64(last.mem.rss)),
		first.threads, mid.threads, last.threads, last.polls, fmtNs(perPoll), m)
	const slack = 256 // KiB
	w.goal = fmt.Sprintf("anonymous ≤ %.0f MiB throughout, no growth in the second half; ≤ %s per poll round", anonGoalPoll/1024.0, fmtNs(pollCPUGoal))
	w.result = verdict(peak <= anonGoalPoll && peak2 <= peak1+slack && last.threads <= mid.threads && perPoll >= 0 && perPoll <= pollCPUGoal)
	b.rep.note("Soak: spotinit %s polls a fake IMDS (never 169.254.169.254) at the default 2 s for %s, beside the other figures; anonymous memory, PSS, RSS (smaps_rollup), threads and CPU (the process's CPU-time clock) sampled from %s after start, every %s. spotinit has no debug endpoint, so goroutines cannot be counted from outside: threads and anonymous memory over time stand in for them. \"No growth\": the peak of anonymous memory in the second half is at most %d KiB above the first half's (after warm-up), and the thread count does not rise. CPU per poll round: spotinit's CPU over the second half divided by the polls of spot/instance-action the fake saw in it.", m, b.cfg.soak, warmUp, step, slack)
}
