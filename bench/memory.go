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
	cpu, wake, rss, pss, threads []float64
}

// figIdle: every init in both modes, each with a sleeping child, all at
// once for the same window: CPU and context switches over the window, then
// RSS and PSS. spotinit also runs polling a local fake IMDS every 2 s.
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
		mem := row{order: rowOrder("idle", l.seq), figure: fmt.Sprintf("RSS / PSS (threads), child sleeping, %s, %s", l.what, l.m), cells: map[string]string{}, load: load}
		idle := row{order: rowOrder("idle", 10+l.seq), figure: fmt.Sprintf("idle CPU / wake-ups in %s, %s, %s", b.cfg.idle, l.what, l.m), cells: map[string]string{}, load: load}
		for k, a := range acc {
			if k.mode != l.m || k.imds != l.imds || len(a.rss) == 0 {
				continue
			}
			mem.cells[k.init] = fmt.Sprintf("%s / %s (%.0f)", fmtMiB(median(a.rss)), fmtMiB(median(a.pss)), median(a.threads))
			idle.cells[k.init] = fmt.Sprintf("%s / %.0f", fmtNs(median(a.cpu)), median(a.wake))
			if k.init == "spotinit" && k.mode == pid1 {
				limit := 6.0
				if k.imds {
					limit = 8
				}
				mem.goal = fmt.Sprintf("RSS ≤ %.0f MiB", limit)
				mem.result = verdict(median(a.rss) <= limit*1024)
				if !k.imds {
					idle.goal = fmt.Sprintf("≤ %.0f wake-ups", wakeGoal)
					idle.result = verdict(median(a.wake) <= wakeGoal)
				}
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
	b.rep.note("Idle and memory: all inits run at once, each with a sleeping child; after 2 s of settling, CPU is the on-CPU time summed over the init's threads (/proc/PID/task/*/schedstat) and wake-ups the voluntary plus involuntary context switches summed over its threads (/proc/PID/task/*/status), both over the same %s window; then RSS and PSS from /proc/PID/smaps_rollup. Medians of %d run(s).", b.cfg.idle, b.cfg.idleRuns)
}

func (b *bench) idleRun(ctx context.Context, acc map[idleKey]*idleAcc) {
	type running struct {
		key  idleKey
		p    *proc
		fake *fake
		u0   usage
		ok   bool
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
		a.cpu = append(a.cpu, float64(u1.cpuNs-r.u0.cpuNs))
		a.wake = append(a.wake, float64(u1.switches-r.u0.switches))
		a.threads = append(a.threads, float64(u1.threads))
		a.rss = append(a.rss, float64(m.rss))
		a.pss = append(a.pss, float64(m.pss))
		if r.u0.threads != u1.threads {
			b.rep.note("Idle: %s (%s) went from %d to %d threads during the window (context switches of threads that exited are not counted).", r.key.init, r.key.mode, r.u0.threads, u1.threads)
		}
	}
}

// figSoak: spotinit as PID 1 polling a local fake IMDS at the default
// interval for cfg.soak, beside the other figures, sampling its memory and
// threads. spotinit has no debug endpoint, so goroutines cannot be counted
// from outside: the thread count and RSS stand in for them.
func (b *bench) figSoak(ctx context.Context) {
	w := row{order: rowOrder("soak", 0), figure: fmt.Sprintf("soak: %s of IMDS polling every 2 s (at 5 s → half-way → end)", b.cfg.soak), cells: map[string]string{}}
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
	step := max(b.cfg.soak/10, time.Second)
	type sample struct {
		at      time.Duration
		mem     memory
		threads int
	}
	var ss []sample
	next := 5 * time.Second // past start-up
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
		ss = append(ss, sample{time.Since(began), mem, u.threads})
		b.debugf("soak: %s RSS %d KiB PSS %d KiB threads %d", time.Since(began).Round(time.Second), mem.rss, mem.pss, u.threads)
		if next >= b.cfg.soak {
			break
		}
		next += step
	}
	if len(ss) == 0 {
		return
	}
	first, mid, last := ss[0], ss[len(ss)/2], ss[len(ss)-1]
	var peak int64
	for _, s := range ss {
		peak = max(peak, s.mem.rss)
	}
	gets, _ := f.polls()
	w.cells["spotinit"] = fmt.Sprintf("RSS %s → %s → %s (peak %s), PSS %s → %s → %s, threads %d → %d → %d; %d polls, %s",
		fmtMiB(float64(first.mem.rss)), fmtMiB(float64(mid.mem.rss)), fmtMiB(float64(last.mem.rss)), fmtMiB(float64(peak)),
		fmtMiB(float64(first.mem.pss)), fmtMiB(float64(mid.mem.pss)), fmtMiB(float64(last.mem.pss)),
		first.threads, mid.threads, last.threads, len(gets), m)
	w.goal = "RSS ≤ 8 MiB throughout; no growth in the second half"
	w.result = verdict(peak <= 8*1024 && last.mem.rss <= mid.mem.rss+256)
	b.rep.note("Soak: spotinit %s polls a fake IMDS (never 169.254.169.254) at the default 2 s for %s, beside the other figures; RSS/PSS/threads sampled from 5 s after start, every %s. spotinit has no debug endpoint, so goroutines cannot be counted from outside: threads and RSS over time stand in for them. \"No growth\": at most 256 KiB more RSS at the last sample than half-way (the first half includes warm-up).", m, b.cfg.soak, step)
}
