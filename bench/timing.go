package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// figSize: the binaries as they are, stripped and static or not.
func (b *bench) figSize(context.Context) {
	w := row{order: rowOrder("size", 0), figure: "binary size", cells: map[string]string{}}
	for _, s := range b.inits {
		if !s.ok() {
			continue
		}
		bi := describeBinary(s.path)
		if bi.err != nil {
			w.cells[s.name] = "? (" + bi.err.Error() + ")"
			continue
		}
		kind := "static"
		if !bi.static {
			kind = "dynamic (+ libc)"
		}
		if !bi.stripped {
			kind += ", not stripped"
		}
		w.cells[s.name] = fmt.Sprintf("%s, %s", fmtBytes(bi.size), kind)
		if s.name == "spotinit" {
			w.goal = "≤ 10 MiB"
			w.result = verdict(bi.size <= 10<<20)
		}
		if s.pkg != "" {
			var fs []string
			for _, p := range packageFiles(s.pkg) {
				pi := describeBinary(p)
				k := "static"
				if !pi.static {
					k = "dynamic"
				}
				fs = append(fs, fmt.Sprintf("%s %s (%d B, %s)", p, fmtBytes(pi.size), pi.size, k))
			}
			if len(fs) > 0 {
				b.rep.note("Size: Debian package %s installs %s; the bench runs %s.", s.pkg, strings.Join(fs, ", "), s.path)
			}
		} else {
			b.rep.note("Size: %s is %d bytes.", s.path, bi.size)
		}
	}
	b.rep.add(w)
}

// stampRun runs argv (whose command is the stamp child) to completion and
// returns, relative to the moment before the fork, when the child ran its
// first instruction and when the init (or the child) had been reaped.
func (b *bench) stampRun(argv, env []string, m mode) (start, round int64, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	t0 := mono()
	pid, err := b.spawn(argv, env, m, w)
	w.Close()
	if err != nil {
		return 0, 0, err
	}
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, rerr := bufio.NewReader(r).ReadString('\n')
	if rerr != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	ws, werr := b.reap(pid)
	t2 := mono()
	if rerr != nil {
		return 0, 0, fmt.Errorf("read the child's stamp: %w", rerr)
	}
	if werr != nil {
		return 0, 0, werr
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return 0, 0, fmt.Errorf("%s: status %v", argv[0], ws)
	}
	t1, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("child stamp %q: %w", line, err)
	}
	return t1 - t0, t2 - t0, nil
}

// pairs runs a and b in alternation, n pairs for each target, round robin
// over the targets so that every target sees the same drift in load: pair
// i runs the baseline first when i is even and the init first when odd.
// Each pair gives the init's sample minus the baseline's.
func (b *bench) pairs(ctx context.Context, ts []target, n int, base func(target) ([]int64, error), with func(target) ([]int64, error)) map[target][][]float64 {
	out := map[target][][]float64{}
	errs := map[target]int{}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		for _, t := range ts {
			var x, y []int64
			var ex, ey error
			if i%2 == 0 {
				y, ey = base(t)
				x, ex = with(t)
			} else {
				x, ex = with(t)
				y, ey = base(t)
			}
			if ex != nil || ey != nil {
				if errs[t] == 0 {
					b.logf("%s: %v %v", t, ex, ey)
				}
				errs[t]++
				continue
			}
			if out[t] == nil {
				out[t] = make([][]float64, len(x))
			}
			for k := range x {
				out[t][k] = append(out[t][k], float64(x[k]-y[k]))
			}
		}
		if (i+1)%10 == 0 {
			b.debugf("pair %d/%d", i+1, n)
		}
	}
	for t, e := range errs {
		b.rep.note("%s: %d of %d pairs failed and were left out.", t, e, n)
	}
	return out
}

// figStartup: exec → child's first instruction, and exec → reaped, under
// the init minus without it. The baseline is the child alone, in a new PID
// namespace for the PID 1 rows.
func (b *bench) figStartup(ctx context.Context) {
	ph := startPhase()
	ts := b.targets(pid1, plain)
	stamp := b.h.path(hStamp)
	res := b.pairs(ctx, ts, b.cfg.pairs,
		func(t target) ([]int64, error) {
			s, r, err := b.stampRun([]string{stamp}, baseEnv(), t.mode)
			return []int64{s, r}, err
		},
		func(t target) ([]int64, error) {
			s, r, err := b.stampRun(t.init.argv(t.mode, spotOff, stamp), b.envFor(t.init, baseEnv()), t.mode)
			return []int64{s, r}, err
		})
	load := ph.load()
	for i, m := range []mode{pid1, plain} {
		start := row{order: rowOrder("startup", i), figure: "start-up added: exec → child running, " + m.String(), cells: map[string]string{}, load: load}
		round := row{order: rowOrder("startup", 10+i), figure: "run `exit 0` to the end, added, " + m.String(), cells: map[string]string{}, load: load}
		for t, d := range res {
			if t.mode != m {
				continue
			}
			start.cells[t.init.name] = fmtDiff(d[0])
			round.cells[t.init.name] = fmtDiff(d[1])
			if t.init.name == "spotinit" && m == pid1 {
				start.goal = "≤ 2 ms"
				start.result = verdict(median(d[0]) <= 2e6)
			}
		}
		b.rep.add(start)
		b.rep.add(round)
	}
	b.rep.note("Start-up: the child stamps CLOCK_MONOTONIC as its first instruction; each pair is (init → child) minus (child alone, in a new PID namespace for PID 1), alternating which runs first; median of the differences, IQR in brackets. The second figure runs until the init has been reaped (start-up plus exit).")
}

// forwardRun starts argv (whose command is the sigwait child), waits until
// the child has blocked SIGTERM and a settling pause has passed, sends
// SIGTERM to the process started (the init, or the child itself) and
// returns how long it took to reach the child's sigwaitinfo.
func (b *bench) forwardRun(argv, env []string, m mode) (int64, error) {
	p, err := b.start(argv, env, m)
	if err != nil {
		return 0, err
	}
	defer p.stop()
	if err := p.ready(10 * time.Second); err != nil {
		return 0, err
	}
	time.Sleep(15 * time.Millisecond) // let the init settle into its wait
	t0 := mono()
	if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil {
		return 0, err
	}
	t1, err := p.int64Line("", 5*time.Second)
	if err != nil {
		return 0, err
	}
	if !p.wait(5 * time.Second) {
		return 0, fmt.Errorf("%s did not exit after its child", argv[0])
	}
	return t1 - t0, nil
}

// figForward: SIGTERM to the init → the child has it, minus SIGTERM sent
// straight to the child.
func (b *bench) figForward(ctx context.Context) {
	ph := startPhase()
	ts := b.targets(pid1, plain)
	sw := b.h.path(hSigwait)
	n := max(b.cfg.pairs/2, 10) // each pair starts two inits and pauses: half as many
	res := b.pairs(ctx, ts, n,
		func(target) ([]int64, error) {
			d, err := b.forwardRun([]string{sw}, baseEnv(), plain)
			return []int64{d}, err
		},
		func(t target) ([]int64, error) {
			d, err := b.forwardRun(t.init.argv(t.mode, spotOff, sw), b.envFor(t.init, baseEnv()), t.mode)
			return []int64{d}, err
		})
	load := ph.load()
	var tiniMed float64 = -1
	for t, d := range res {
		if t.init.name == "tini" && t.mode == pid1 {
			tiniMed = median(d[0])
		}
	}
	for i, m := range []mode{pid1, plain} {
		w := row{order: rowOrder("forward", i), figure: "SIGTERM forwarding added, " + m.String(), cells: map[string]string{}, load: load}
		for t, d := range res {
			if t.mode != m {
				continue
			}
			w.cells[t.init.name] = fmtDiff(d[0])
			if t.init.name == "spotinit" && m == pid1 {
				med := median(d[0])
				w.goal = "≤ 200 µs and ≤ 2× tini"
				ok := med <= 200e3
				if tiniMed > 0 {
					ok = ok && med <= 2*tiniMed
					w.goal += fmt.Sprintf(" (2× tini = %s)", fmtNs(2*tiniMed))
				}
				w.result = verdict(ok)
			}
		}
		b.rep.add(w)
	}
	b.rep.note("SIGTERM forwarding: the child blocks SIGTERM, says it is ready and waits in sigwaitinfo, stamping CLOCK_MONOTONIC when it returns; 15 ms after ready the bench stamps and sends SIGTERM to the init. Each pair is that minus the same with SIGTERM sent straight to the child alone; %d pairs per init, alternating.", n)
}
