package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spotinit/spotinit/simulator"
	"golang.org/x/sys/unix"
)

// The stop sequence of the SIGKILL figure: SIGKILL is due at
// SIGTERM + killStop - killMargin.
const (
	killStop   = 2 * time.Second
	killMargin = time.Second
)

// killRun starts the init with a child that ignores SIGTERM, sends the init
// SIGTERM and returns when the child died relative to SIGTERM + killStop -
// killMargin; escalated is false when it was still alive half a second
// after that.
func (b *bench) killRun(t target) (errNs int64, escalated bool, err error) {
	opts := append(append([]string(nil), spotOff...), "--stop-timeout", killStop.String(), "--kill-margin", killMargin.String())
	p, err := b.start(t.init.argv(t.mode, opts, b.h.path(hIgnterm)), b.envFor(t.init, baseEnv()), t.mode)
	if err != nil {
		return 0, false, err
	}
	defer p.kill()
	if err := p.ready(10 * time.Second); err != nil {
		return 0, false, err
	}
	time.Sleep(15 * time.Millisecond)
	kids := children(p.pid)
	if len(kids) != 1 {
		return 0, false, fmt.Errorf("want 1 child of the init, found %d", len(kids))
	}
	pfd, err := unix.PidfdOpen(kids[0], 0)
	if err != nil {
		return 0, false, err
	}
	defer unix.Close(pfd)
	due := killStop - killMargin
	t0 := mono()
	if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil {
		return 0, false, err
	}
	limit := t0 + int64(due+500*time.Millisecond)
	for {
		left := (limit - mono()) / 1e6
		if left <= 0 {
			return 0, false, nil
		}
		pf := []unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}
		n, err := unix.Poll(pf, int(left))
		t1 := mono()
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		if n > 0 {
			return t1 - (t0 + int64(due)), true, nil
		}
	}
}

// kill ends the process at once: SIGKILL to its children and to it.
func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		for _, c := range children(p.pid) {
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		<-p.done
	}
	p.killStrays()
	p.out.Close()
}

// figKill: how far from its deadline spotinit's own SIGKILL lands. The
// peers never escalate; one run each confirms it.
func (b *bench) figKill(ctx context.Context) {
	ph := startPhase()
	type acc struct {
		errs       []float64
		noEscalate int
		fail       error
	}
	res := map[target]*acc{}
	ts := b.targets(pid1, plain)
	for run := 0; run < b.cfg.killRuns && ctx.Err() == nil; run++ {
		for _, t := range ts {
			if t.init.name != "spotinit" && run > 0 {
				continue
			}
			a := res[t]
			if a == nil {
				a = &acc{}
				res[t] = a
			}
			e, esc, err := b.killRun(t)
			switch {
			case err != nil:
				a.fail = err
				b.logf("kill: %s: %v", t, err)
			case esc:
				a.errs = append(a.errs, float64(e))
			default:
				a.noEscalate++
			}
		}
	}
	load := ph.load()
	for i, m := range []mode{pid1, plain} {
		w := row{order: rowOrder("kill", i), figure: fmt.Sprintf("SIGKILL timing error (child ignores TERM, stop-timeout %s, kill-margin %s), %s", killStop, killMargin, m), cells: map[string]string{}, load: load}
		for t, a := range res {
			if t.mode != m {
				continue
			}
			var c string
			switch {
			case len(a.errs) > 0:
				var abs []float64
				for _, e := range a.errs {
					abs = append(abs, max(e, -e))
				}
				c = fmt.Sprintf("%s (max abs. error %s, n=%d)", fmtSigned(median(a.errs)), fmtNs(quantile(abs, 1)), len(a.errs))
				if a.noEscalate > 0 {
					c += fmt.Sprintf(", %d runs without escalation", a.noEscalate)
				}
				if t.init.name == "spotinit" && m == pid1 {
					w.goal = "≤ 50 ms"
					w.result = verdict(median(abs) <= 50e6 && a.noEscalate == 0)
				}
			case a.noEscalate > 0:
				c = "no escalation"
				if t.init.name == "spotinit" {
					w.goal = "≤ 50 ms"
					w.result = verdict(false)
				}
			case a.fail != nil:
				c = "failed: " + a.fail.Error()
			}
			w.cells[t.init.name] = c
		}
		b.rep.add(w)
	}
	b.rep.note("SIGKILL timing: the child ignores SIGTERM; the bench sends SIGTERM to the init and watches the child through a pidfd; error = the child's death − (SIGTERM + stop-timeout − kill-margin), median of %d runs. \"No escalation\": the child was still alive 0.5 s after that moment (one run per peer).", b.cfg.killRuns)
}

// noticeResult is one run of the notice figure.
type noticeResult struct {
	total     int64     // notice visible → first hook started
	detect    int64     // the poll that saw it arrived → first hook started
	intervals []float64 // between successive Spot polls
}

// afterPolls is how many polls a notice run samples past the hook.
const afterPolls = 3

// noticeRun serves a Spot notice that becomes visible at a random moment
// between one and two poll intervals after spotinit starts, and times the
// first pre-stop hook (run directly from --pre-stop-dir, so no shell start
// counts) against it.
func (b *bench) noticeRun(ctx context.Context, t target, poll time.Duration, hookDir string) (noticeResult, error) {
	var r noticeResult
	after := poll + rand.N(poll)
	f, err := startFake(simulator.Scenario{Spot: &simulator.SpotNotice{After: after}})
	if err != nil {
		return r, err
	}
	defer f.close()
	stamp := filepath.Join(b.tmp, fmt.Sprintf("hook-%d.stamp", b.seq.Add(1)))
	env := append(imdsEnv(f.url), "BENCH_STAMP="+stamp)
	p, err := b.start(t.init.argv(t.mode, spotIMDS(f.url, poll, "--pre-stop-dir", hookDir), b.h.path(hSleeper)), b.envFor(t.init, env), t.mode)
	if err != nil {
		return r, err
	}
	defer p.stop()
	if err := p.ready(10 * time.Second); err != nil {
		return r, err
	}
	limit := time.Now().Add(after + 3*poll + 5*time.Second)
	var hook int64
	for {
		data, err := os.ReadFile(stamp)
		if err == nil {
			hook, err = strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
			if err != nil {
				return r, fmt.Errorf("hook stamp %q: %w", data, err)
			}
			break
		}
		if time.Now().After(limit) {
			return r, fmt.Errorf("no hook ran within %s of the notice", time.Until(limit)+3*poll+5*time.Second)
		}
		if !sleepCtx(ctx, 5*time.Millisecond) {
			return r, ctx.Err()
		}
	}
	gets, first := f.polls()
	if first == 0 {
		return r, fmt.Errorf("the hook ran but no poll saw the notice")
	}
	r.total = hook - (f.startMono + int64(after))
	r.detect = hook - first
	// The polling schedule is sampled past the notice as well: the period
	// in which the notice appeared is, by its nature, a longer one than
	// average (a longer period is likelier to hold a random moment), so the
	// periods up to the notice alone overstate the mean. spotinit keeps
	// polling after a notice (a later poll may move the deadline earlier).
	n := len(gets)
	for end := time.Now().Add(afterPolls*poll + poll/2); len(gets) < n+afterPolls && time.Now().Before(end); gets, _ = f.polls() {
		if !sleepCtx(ctx, poll/10) {
			return r, ctx.Err()
		}
	}
	for i := 1; i < len(gets); i++ {
		r.intervals = append(r.intervals, float64(gets[i]-gets[i-1]))
	}
	return r, nil
}

// figNotice: notice → first hook, at each poll interval, spotinit as PID 1.
// Runs go four at a time, each with its own fake IMDS.
func (b *bench) figNotice(ctx context.Context) {
	ph := startPhase()
	var spot *target
	for _, t := range b.targets(pid1, plain) {
		if t.init.name == "spotinit" {
			spot = &t
			break
		}
	}
	hookDir := filepath.Join(b.tmp, "hooks")
	if err := os.MkdirAll(hookDir, 0o755); err != nil {
		b.logf("notice: %v", err)
		return
	}
	if err := os.Symlink(b.h.path(hHookStamp), filepath.Join(hookDir, hHookStamp)); err != nil && !errors.Is(err, os.ErrExist) {
		b.logf("notice: %v", err)
		return
	}
	for i, poll := range b.cfg.polls {
		w := row{order: rowOrder("notice", i), figure: fmt.Sprintf("notice → first hook, poll interval %s", poll), cells: map[string]string{}}
		for _, s := range b.inits {
			if s.name != "spotinit" && s.ok() {
				w.cells[s.name] = "no IMDS watching"
			}
		}
		if spot == nil {
			b.rep.add(w)
			continue
		}
		w.figure += ", " + spot.mode.String()
		var (
			mu      sync.Mutex
			results []noticeResult
			fails   []error
			wg      sync.WaitGroup
		)
		sem := make(chan struct{}, 4)
		for run := 0; run < b.cfg.noticeRuns && ctx.Err() == nil; run++ {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r, err := b.noticeRun(ctx, *spot, poll, hookDir)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					fails = append(fails, err)
					b.logf("notice: %s: %v", poll, err)
					return
				}
				results = append(results, r)
			}()
		}
		wg.Wait()
		w.load = ph.load()
		var total, detect, intervals []float64
		for _, r := range results {
			total = append(total, float64(r.total))
			detect = append(detect, float64(r.detect))
			intervals = append(intervals, r.intervals...)
		}
		if len(results) > 0 {
			expected := residualWait(intervals) + median(detect)
			w.cells["spotinit"] = fmt.Sprintf("%s (IQR %s…%s, n=%d); poll → hook %s; mean poll period %s; expected %s",
				fmtNs(median(total)), fmtNs(quantile(total, 0.25)), fmtNs(quantile(total, 0.75)), len(total),
				fmtNs(median(detect)), fmtNs(mean(intervals)), fmtNs(expected))
			w.goal = fmt.Sprintf("≤ %s (interval/2 + 20 ms)", fmtNs(float64(poll/2+20*time.Millisecond)))
			w.result = verdict(expected <= float64(poll/2+20*time.Millisecond))
		} else if len(fails) > 0 {
			w.cells["spotinit"] = "failed: " + fails[0].Error()
		}
		if len(fails) > 0 && len(results) > 0 {
			b.rep.note("Notice, %s: %d of %d runs failed (first: %v).", poll, len(fails), len(fails)+len(results), fails[0])
		}
		b.rep.add(w)
	}
	b.rep.note("Notice → first hook: each run serves its own fake IMDS (package simulator's handler, on 127.0.0.1) whose Spot notice becomes visible at a random moment one to two poll intervals after start; the hook, run from --pre-stop-dir (no shell), stamps CLOCK_MONOTONIC. The measured latency depends on where the notice falls between two polls, so its median is noisy (≈ interval/2 on average); the verdict uses \"expected\" = the mean wait of a notice arriving at a random moment among the polls observed, %d of them after the hook included (Σ period² / 2 Σ period, about period / 2) + median (poll that saw the notice → hook started), which separates the polling schedule from spotinit's own reaction. %d runs per interval, four at a time.", afterPolls, b.cfg.noticeRuns)
}

// residualWait is how long a notice arriving at a random moment waits for
// the next poll, on average, given the periods between polls: the sum of
// the squared periods over twice their sum (a long period catches more
// notices), about period / 2.
func residualWait(periods []float64) float64 {
	var s, s2 float64
	for _, p := range periods {
		s += p
		s2 += p * p
	}
	return s2 / (2 * s)
}
