package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// zombieRun makes n orphans of the init and releases them at once, and
// returns the time from the release to the last one reaped, from the last
// one's exit to the last one reaped, and the init's own CPU time (utime +
// stime of the init process, not of its children) over the same span.
//
// The orphans block reading a FIFO that the bench holds open; closing it
// is the release. Before it, the bench opens a pidfd for each of the
// init's children and watches them with edge-triggered epoll: a pidfd
// becomes readable when its process exits and reports EPOLLHUP once the
// process has been reaped, so the init is observed from outside and
// nothing polls /proc while the orphans die.
func (b *bench) zombieRun(t target, n int, spread time.Duration) (total, lag, cpu int64, err error) {
	fifo := filepath.Join(b.tmp, fmt.Sprintf("release-%d", b.seq.Add(1)))
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return 0, 0, 0, err
	}
	defer os.Remove(fifo)
	wfd, err := unix.Open(fifo, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0, 0, err
	}
	released := false
	defer func() {
		if !released {
			unix.Close(wfd)
		}
	}()
	p, err := b.start(t.init.argv(t.mode, spotOff, b.h.path(hOrphans), strconv.Itoa(n), fifo, strconv.FormatInt(spread.Microseconds(), 10)), b.envFor(t.init, baseEnv()), t.mode)
	if err != nil {
		return 0, 0, 0, err
	}
	defer p.stop()
	count, err := p.int64Line("R", 3*time.Minute)
	if err != nil {
		return 0, 0, 0, err
	}
	if count < int64(n) {
		return 0, 0, 0, fmt.Errorf("only %d of %d orphans could be forked", count, n)
	}
	kids := children(p.pid)
	if int64(len(kids)) < count+1 {
		return 0, 0, 0, fmt.Errorf("%d of %d orphans were not reparented to the init (not a subreaper?)", count+1-int64(len(kids)), count)
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return 0, 0, 0, err
	}
	defer unix.Close(ep)
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for i, k := range kids {
		fd, err := unix.PidfdOpen(k, 0)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("pidfd_open %d: %w", k, err)
		}
		fds = append(fds, fd)
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(i)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return 0, 0, 0, fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	// The init's own child (the orphan maker) stays alive: count only the
	// orphans.
	want := int(count)
	seen := make([]bool, len(kids))
	reaped := make([]bool, len(kids))
	evs := make([]unix.EpollEvent, 1024)
	var lastExit, lastReap int64
	nReaped := 0
	cpu0, err := ownCPU(p.pid)
	if err != nil {
		return 0, 0, 0, err
	}
	t0 := mono()
	unix.Close(wfd) // the release: every orphan's read() returns EOF
	released = true
	deadline := t0 + int64(60*time.Second+spread)
	for nReaped < want {
		k, err := unix.EpollWait(ep, evs, 1000)
		now := mono()
		if err != nil && !errors.Is(err, unix.EINTR) {
			return 0, 0, 0, fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range evs[:max(k, 0)] {
			i := ev.Fd
			if !seen[i] {
				seen[i] = true
				lastExit = now
			}
			if ev.Events&unix.EPOLLHUP != 0 && !reaped[i] {
				reaped[i] = true
				nReaped++
				lastReap = now
			}
		}
		if now > deadline {
			return 0, 0, 0, fmt.Errorf("%d zombies still there 60 s after the release", want-nReaped)
		}
	}
	cpu1, err := ownCPU(p.pid)
	if err != nil {
		return 0, 0, 0, err
	}
	return lastReap - t0, lastReap - lastExit, cpu1 - cpu0, nil
}

// figZombies: n orphans exit at once under each init; how long until the
// last zombie is gone.
func (b *bench) figZombies(ctx context.Context) {
	ph := startPhase()
	if !b.h.orphans {
		b.rep.add(row{order: rowOrder("zombies", 0), figure: "last zombie gone after orphans exit at once", cells: map[string]string{"spotinit": "n/a (needs gcc)"}})
		return
	}
	maxN := 0
	for _, n := range b.cfg.orphans {
		maxN = max(maxN, n)
	}
	if err := raiseNofile(uint64(maxN) + 1024); err != nil {
		b.logf("zombies: raise the open-file limit: %v", err)
	}
	type key struct {
		t target
		n int
	}
	total := map[key][]float64{}
	lag := map[key][]float64{}
	errs := map[key]error{}
	ts := b.targets(pid1, plain)
	for run := 0; run < b.cfg.zombieRuns && ctx.Err() == nil; run++ {
		for _, n := range b.cfg.orphans {
			for _, t := range ts {
				if ctx.Err() != nil {
					break
				}
				k := key{t, n}
				if t.mode == plain && !t.init.reapsPlain() {
					continue
				}
				if errs[k] != nil && len(total[k]) == 0 && run > 0 {
					continue // failed before and never worked
				}
				tt, l, _, err := b.zombieRun(t, n, 0)
				if err != nil {
					b.logf("zombies: %s, %d orphans: %v", t, n, err)
					errs[k] = err
					continue
				}
				total[k] = append(total[k], float64(tt))
				lag[k] = append(lag[k], float64(l))
				b.debugf("zombies: %s, %d orphans: %s (lag %s)", t, n, fmtNs(float64(tt)), fmtNs(float64(l)))
			}
		}
	}
	load := ph.load()
	seq := 0
	for _, n := range b.cfg.orphans {
		for _, m := range []mode{pid1, plain} {
			if m == pid1 && !b.canPID1 {
				continue
			}
			w := row{order: rowOrder("zombies", seq), figure: fmt.Sprintf("last zombie gone after %s orphans exit at once, %s", groupDigits(n), m), cells: map[string]string{}, load: load}
			seq++
			for _, t := range ts {
				if t.mode != m {
					continue
				}
				k := key{t, n}
				switch {
				case m == plain && !t.init.reapsPlain():
					w.cells[t.init.name] = "no subreaper"
				case len(total[k]) > 0:
					w.cells[t.init.name] = fmt.Sprintf("%s [%s] (n=%d)", fmtNs(median(total[k])), fmtSigned(median(lag[k])), len(total[k]))
				case errs[k] != nil:
					w.cells[t.init.name] = "failed: " + errs[k].Error()
				}
				if t.init.name == "spotinit" && m == pid1 && n == 10000 {
					w.goal = "≤ 50 ms"
					if len(total[k]) > 0 {
						// The release → gone figure is mostly the kernel's
						// work on 10,000 exits (the peers show it); the
						// part after the last exit is the init's own.
						w.result = fmt.Sprintf("%s; after the last exit: %s", verdict(median(total[k]) <= 50e6), verdict(median(lag[k]) <= 50e6))
					}
				}
			}
			b.rep.add(w)
		}
	}
	b.rep.note("Zombies: the init's child forks a process that forks the orphans and exits, so they are reparented to the init; each blocks reading a FIFO. The bench opens a pidfd per orphan (edge-triggered epoll: readable at exit, EPOLLHUP once reaped), then closes the FIFO's last writer, releasing them all at once. Figure: release → last orphan reaped, median of %d run(s); in brackets, last orphan's exit → last reaped (what the init adds after the kernel is done with the exits). dumb-init never becomes a subreaper, so as a plain process its orphans go elsewhere. The load average of this phase is the bench's own: 10,000 exiting processes count as runnable.", b.cfg.zombieRuns)
}

func groupDigits(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// figReapCPU: the init's own CPU while a burst of orphans is reaped, side
// by side: all exiting at once, and the same number exiting evenly over
// cfg.spread (the steady trickle of a fork-heavy container, where every
// exit wakes the init on its own).
func (b *bench) figReapCPU(ctx context.Context) {
	ph := startPhase()
	n := b.cfg.burst
	spreads := []time.Duration{0}
	if b.cfg.spread > 0 {
		spreads = append(spreads, b.cfg.spread)
	}
	title := func(spread time.Duration) string {
		if spread == 0 {
			return fmt.Sprintf("init's own CPU to reap %s orphans exiting at once", groupDigits(n))
		}
		return fmt.Sprintf("init's own CPU to reap %s orphans exiting evenly over %s", groupDigits(n), spread)
	}
	if !b.h.orphans {
		b.rep.add(row{order: rowOrder("reapcpu", 0), figure: title(0), cells: map[string]string{"spotinit": "n/a (needs gcc)"}})
		return
	}
	if err := raiseNofile(uint64(n) + 1024); err != nil {
		b.logf("reapcpu: raise the open-file limit: %v", err)
	}
	type key struct {
		t      target
		spread time.Duration
	}
	cpu := map[key][]float64{}
	errs := map[key]error{}
	ts := b.targets(pid1, plain)
	// Round robin over the inits within each run, so that every init sees
	// the same drift in the machine's load.
	for run := 0; run < b.cfg.reapRuns && ctx.Err() == nil; run++ {
		for _, sp := range spreads {
			for _, t := range ts {
				if ctx.Err() != nil || t.mode == plain && !t.init.reapsPlain() {
					continue
				}
				k := key{t, sp}
				_, _, c, err := b.zombieRun(t, n, sp)
				if err != nil {
					b.logf("reapcpu: %s: %v", t, err)
					errs[k] = err
					continue
				}
				cpu[k] = append(cpu[k], float64(c))
				b.debugf("reapcpu: %s, spread %s: %s", t, sp, fmtNs(float64(c)))
			}
		}
	}
	load := ph.load()
	seq := 0
	for _, sp := range spreads {
		for _, m := range []mode{pid1, plain} {
			if m == pid1 && !b.canPID1 {
				continue
			}
			w := row{order: rowOrder("reapcpu", seq), figure: title(sp) + ", " + m.String(), cells: map[string]string{}, load: load}
			seq++
			var tini float64 = -1
			for k, c := range cpu {
				if k.spread == sp && k.t.mode == m && k.t.init.name == "tini" {
					tini = median(c)
				}
			}
			for _, t := range ts {
				if t.mode != m {
					continue
				}
				k := key{t, sp}
				c := cpu[k]
				switch {
				case m == plain && !t.init.reapsPlain():
					w.cells[t.init.name] = "no subreaper"
				case len(c) > 0:
					w.cells[t.init.name] = fmt.Sprintf("%s (%s…%s, n=%d)", fmtNs(median(c)), fmtNs(quantile(c, 0)), fmtNs(quantile(c, 1)), len(c))
				case errs[k] != nil:
					w.cells[t.init.name] = "failed: " + errs[k].Error()
				}
				if t.init.name == "spotinit" && len(c) > 0 && tini > 0 {
					w.goal = fmt.Sprintf("≤ 2× tini (%s)", fmtNs(2*tini))
					w.result = verdict(median(c) <= 2*tini)
				}
			}
			b.rep.add(w)
		}
	}
	b.rep.note("Reaping CPU: the zombie figure's set-up with %s orphans, released all at once, and released at once but each sleeping i × %s / %s before it exits (evenly spread exits: each one wakes the init on its own, as in a container that forks all the time); the init's own CPU time (user + system, every thread of the init, none of its children: the total /proc/PID/stat gives in 10 ms ticks, read in nanoseconds from the init's CPU-time clock) from just before the release to the moment the bench sees the last orphan reaped. Median (min…max) of %d run(s), the inits taking turns within each run. Much of it is the kernel's, whichever init runs: each wait4 that finds no zombie walks the list of the init's live children, so the more often an init wakes while thousands are alive, the more it pays; how often that is depends on how the scheduler interleaves the init with the exiting orphans, which is why single runs vary several-fold. dumb-init never becomes a subreaper, so as a plain process its orphans go elsewhere.", groupDigits(n), b.cfg.spread, groupDigits(n), b.cfg.reapRuns)
}
