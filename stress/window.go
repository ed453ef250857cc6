package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The outcomes of one SIGTERM sent to spotinit soon after exec.
const (
	out143     = "143"     // spotinit caught it and forwarded it: the child died of it, spotinit exited 128+15
	outExit2   = "exit2"   // PID 1: the Go runtime's default for a SIGTERM nobody is notified for (its re-raise cannot kill PID 1, so it exits 2)
	outKilled  = "killed"  // killed by the signal (not PID 1): the kernel's default before any handler, or the Go runtime's default, which re-raises it
	outDropped = "dropped" // spotinit ran on and the child was never signalled (PID 1 before any handler: the kernel drops it)
	outOther   = "other"   // anything else: a crash, a hang, a wrong code
)

// windowRun is one SIGTERM sent to spotinit delay after exec.
type windowRun struct {
	mode    string        // pid1 or plain
	delay   time.Duration // asked for
	sent    time.Duration // when kill returned, after exec
	cpu     time.Duration // spotinit's on-CPU time just before the kill
	outcome string
	detail  string // for "other"
}

// startupWindow sweeps the arrival of a SIGTERM from -from to -to after
// spotinit's exec, as PID 1 of a new PID namespace and as a plain process,
// and prints the outcome per step. It fails when any run ends in an
// outcome other than the four known ones, or when a run ends in anything
// but 143 although the signal was sent after the bounds given.
//
// With -floor, the floor program (stress/windowfloor: the least a Go init
// can do before it catches SIGTERM) is swept too, interleaved run by run,
// and the CPU bound becomes the larger of -max-window-cpu and three times
// the most CPU the floor had used before one of its own runs that was not
// 143. How much CPU the Go runtime's start-up costs depends on the machine
// (on nested virtual machines, where every first touch of a page is a trip
// to the host, it is several times a bare machine's), so a fixed bound
// alone fails on slow machines for no fault of spotinit's. Three, not two:
// spotinit's binary is six times the floor's, and where page faults are
// dear its start-up varies more from run to run (a reduced sweep saw 8.9 ms
// against a floor of 3.8 ms).
func startupWindow(args []string) error {
	fs := flag.NewFlagSet("startup-window", flag.ExitOnError)
	from := fs.Duration("from", 0, "first delay after exec")
	to := fs.Duration("to", 15*time.Millisecond, "last delay after exec")
	step := fs.Duration("step", 250*time.Microsecond, "step between delays")
	runs := fs.Int("runs", 20, "runs per step and mode")
	modes := fs.String("modes", "pid1,plain", "modes, comma-separated: pid1 (PID 1 of a new PID namespace; needs root) and plain")
	timeout := fs.Duration("timeout", 2*time.Second, "a run counts as dropped when spotinit has run its child for this long after the signal without starting its stop sequence")
	maxCPU := fs.Duration("max-window-cpu", 5*time.Millisecond, "fail if a run ends in anything but 143 although spotinit had used this much CPU when the signal was sent (0: no check); CPU time, not wall time, so a loaded machine cannot stretch it")
	floor := fs.String("floor", "", "also sweep the floor program and bound spotinit's window by three times the floor's: a path, or \"build\" to build ./stress/windowfloor")
	maxWall := fs.Duration("max-window", 0, "fail if a run ends in anything but 143 at a delay of this much or more after exec (0: no check; wall time, so only for a quiet machine)")
	verbose := fs.Bool("v", false, "print every run")
	bin := fs.String("spotinit", "", "spotinit binary (default: build it as the README does)")
	_ = fs.Parse(args)
	if *step <= 0 || *runs <= 0 || *to < *from {
		return errors.New("want -step > 0, -runs > 0 and -to >= -from")
	}
	var ms []string
	for _, m := range strings.Split(*modes, ",") {
		switch m = strings.TrimSpace(m); m {
		case "pid1", "plain":
			ms = append(ms, m)
		case "":
		default:
			return fmt.Errorf("unknown mode %q (want pid1 or plain)", m)
		}
	}
	if len(ms) == 0 {
		return errors.New("no mode")
	}
	sp, err := buildSpotinit(*bin)
	if err != nil {
		return err
	}
	var floorBin string
	switch *floor {
	case "":
	case "build":
		if floorBin, err = goBuild("windowfloor", "./stress/windowfloor", "-ldflags=-s -w"); err != nil {
			return err
		}
	default:
		floorBin = *floor
	}
	if floorBin != "" {
		for _, m := range ms {
			ms = append(ms, floorPrefix+m)
		}
	}
	child, err := exec.LookPath("sleep")
	if err != nil {
		return err
	}
	// Children of a plain spotinit that was killed come here, to be
	// killed and reaped, instead of outliving the sweep.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become a child subreaper: %w", err)
	}
	// One OS thread forks, times and signals, with the least timer slack,
	// so that the delays are what they say.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set timer slack: %w", err)
	}
	var delays []time.Duration
	for d := *from; d <= *to; d += *step {
		delays = append(delays, d)
	}
	w := &windower{bin: sp, floor: floorBin, child: child, timeout: *timeout}
	load0 := loadavg()
	began := time.Now()
	if floorBin != "" {
		sp += " and the floor " + floorBin
	}
	fmt.Printf("startup-window: %s; SIGTERM %v to %v after exec in steps of %v, %d runs a step, modes %s; load %s\n",
		sp, *from, *to, *step, *runs, strings.Join(ms, ","), load0)
	results := map[string]map[time.Duration][]windowRun{}
	for _, m := range ms {
		results[m] = map[time.Duration][]windowRun{}
	}
	// Rounds over every step and mode, so that drifts in the machine's
	// load touch every step alike.
	for r := 0; r < *runs; r++ {
		for _, d := range delays {
			for _, m := range ms {
				res, err := w.run(m, d)
				if err != nil {
					return fmt.Errorf("%s, %v: %w", m, d, err)
				}
				if *verbose {
					fmt.Printf("  %-5s %8v sent %8v cpu %8v %s %s\n", m, d, res.sent.Round(time.Microsecond), res.cpu.Round(time.Microsecond), res.outcome, res.detail)
				}
				results[m][d] = append(results[m][d], res)
			}
		}
	}
	fmt.Printf("startup-window: %d runs in %v; load %s → %s\n", *runs*len(delays)*len(ms), time.Since(began).Round(time.Second), load0, loadavg())
	printWindow(ms, delays, results)
	if floorBin != "" {
		var floorCPU time.Duration
		for _, m := range ms {
			if strings.HasPrefix(m, floorPrefix) {
				floorCPU = max(floorCPU, worstCPU(delays, results[m]))
			}
		}
		if 3*floorCPU > *maxCPU {
			fmt.Printf("the CPU bound is three times the floor's %.2f ms, above -max-window-cpu %v\n", float64(floorCPU)/1e6, *maxCPU)
			*maxCPU = 3 * floorCPU
		}
	}
	return checkWindow(ms, delays, results, *maxCPU, *maxWall)
}

// floorPrefix marks the modes that run the floor program.
const floorPrefix = "floor/"

// worstCPU is the most CPU the program had used before one of the runs
// that did not end in 143.
func worstCPU(delays []time.Duration, byDelay map[time.Duration][]windowRun) time.Duration {
	var worst time.Duration
	for _, d := range delays {
		for _, r := range byDelay[d] {
			if r.outcome != out143 {
				worst = max(worst, r.cpu)
			}
		}
	}
	return worst
}

type windower struct {
	bin, floor, child string
	timeout           time.Duration
}

// run starts spotinit, sends it SIGTERM delay after exec and classifies
// what follows.
func (w *windower) run(mode string, delay time.Duration) (windowRun, error) {
	res := windowRun{mode: mode, delay: delay}
	bin := w.bin
	if m, ok := strings.CutPrefix(mode, floorPrefix); ok {
		mode, bin = m, w.floor
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return res, err
	}
	defer devnull.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return res, err
	}
	defer pr.Close()
	attr := &syscall.ProcAttr{
		Env:   []string{"PATH=/usr/local/bin:/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED=true"},
		Files: []uintptr{devnull.Fd(), devnull.Fd(), pw.Fd()},
		Sys:   &syscall.SysProcAttr{},
	}
	if mode == "pid1" {
		attr.Sys.Cloneflags = syscall.CLONE_NEWPID
	}
	argv := []string{bin, "--imds", "off", "--log-format", "text", "--log-level", "info", "--", w.child, "60"}
	pid, err := syscall.ForkExec(bin, argv, attr)
	t0 := monoNow()
	pw.Close()
	if err != nil {
		return res, fmt.Errorf("start spotinit: %w", err)
	}
	if delay > 0 {
		ts := unix.NsecToTimespec(int64(t0 + delay))
		for {
			err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
			if err != unix.EINTR {
				break
			}
		}
	}
	res.cpu = processCPU(pid)
	killErr := syscall.Kill(pid, syscall.SIGTERM)
	res.sent = monoNow() - t0
	if killErr != nil {
		return res, fmt.Errorf("kill: %w", killErr)
	}

	// spotinit's log, line by line, tells a run it dropped the signal
	// from one still starting up.
	var mu sync.Mutex
	var childAt time.Duration // when "child started" was seen, after exec
	var stopping bool
	var lines []string
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			l := sc.Text()
			mu.Lock()
			lines = append(lines, l)
			switch {
			case strings.Contains(l, `msg="child started"`):
				childAt = monoNow() - t0
			case strings.Contains(l, `msg="stop sequence started"`):
				stopping = true
			}
			mu.Unlock()
		}
	}()
	const hardLimit = time.Minute
	var ws syscall.WaitStatus
	for {
		wpid, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("wait4: %w", err)
		}
		if wpid == pid {
			break
		}
		now := monoNow() - t0
		mu.Lock()
		dropped := childAt > 0 && !stopping && now >= max(res.sent, childAt)+w.timeout
		mu.Unlock()
		if dropped || now > hardLimit {
			res.outcome = outDropped
			if !dropped {
				res.outcome, res.detail = outOther, fmt.Sprintf("still running after %v", hardLimit)
			}
			_ = syscall.Kill(pid, syscall.SIGKILL) // a PID 1 takes its namespace with it
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
				return res, fmt.Errorf("wait4: %w", err)
			}
			reapStrays()
			return res, nil
		}
		time.Sleep(time.Millisecond) // polling for the exit, bounded by the limits above
	}
	reapStrays()
	switch {
	case ws.Exited() && ws.ExitStatus() == 143:
		res.outcome = out143
	case ws.Exited() && ws.ExitStatus() == 2:
		res.outcome = outExit2
	case ws.Signaled() && ws.Signal() == syscall.SIGTERM:
		res.outcome = outKilled
	default:
		res.outcome = outOther
		mu.Lock()
		res.detail = fmt.Sprintf("status %v; log: %s", ws, strings.Join(lines, " | "))
		mu.Unlock()
	}
	return res, nil
}

// reapStrays kills and reaps every child the sweep has left: the children
// of a plain spotinit that died, which came to this subreaper.
func reapStrays() {
	for {
		kids := ownChildren()
		if len(kids) == 0 {
			return
		}
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
		for range kids {
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(-1, &ws, 0, nil)
		}
	}
}

func ownChildren() []int {
	tids, _ := os.ReadDir("/proc/self/task")
	var out []int
	for _, t := range tids {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			var n int
			if _, err := fmt.Sscan(f, &n); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// processCPU is the on-CPU time of every thread of pid so far: a measure
// of how far spotinit's start-up has come that a loaded machine does not
// stretch (almost all of it is the main thread's, where the Go runtime runs
// every package's init). It reads the process's CPU-time clock
// (clock_getcpuclockid), which is up to date even while the process runs;
// Linux lets any process read another's.
func processCPU(pid int) time.Duration {
	const cpuclockSched = 2
	clk := int32(^pid)<<3 | cpuclockSched
	var ts unix.Timespec
	if err := unix.ClockGettime(clk, &ts); err != nil {
		return -1
	}
	return time.Duration(ts.Nano())
}

func monoNow() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// printWindow prints one line per delay: per mode, how many runs ended in
// each outcome, and the median moment the signal was sent.
func printWindow(ms []string, delays []time.Duration, results map[string]map[time.Duration][]windowRun) {
	fmt.Println("outcomes: 143 = caught and forwarded (the child died of it); exit2 = PID 1, the Go runtime's default before Notify;")
	fmt.Println("  killed = not PID 1, killed by the signal (the kernel's default before the entry stub, or the runtime's, which re-raises it);")
	fmt.Println("  dropped = PID 1 before the entry stub: the kernel drops it and the child is never signalled; other = anything else (a failure).")
	fmt.Println("  sent = median moment the signal went, after exec (ForkExec returned)")
	var hdr strings.Builder
	fmt.Fprintf(&hdr, "%9s", "delay")
	for _, m := range ms {
		fmt.Fprintf(&hdr, " | %-5s %4s %5s %6s %7s %5s %9s", m, "143", "exit2", "killed", "dropped", "other", "sent")
	}
	fmt.Println(hdr.String())
	for _, d := range delays {
		var l strings.Builder
		fmt.Fprintf(&l, "%7.2fms", float64(d)/1e6)
		for _, m := range ms {
			rs := results[m][d]
			n := map[string]int{}
			var sent []time.Duration
			for _, r := range rs {
				n[r.outcome]++
				sent = append(sent, r.sent)
			}
			slices.Sort(sent)
			med := time.Duration(0)
			if len(sent) > 0 {
				med = sent[len(sent)/2]
			}
			fmt.Fprintf(&l, " | %-5s %4d %5d %6d %7d %5d %7.2fms", "", n[out143], n[outExit2], n[outKilled], n[outDropped], n[outOther], float64(med)/1e6)
		}
		fmt.Println(l.String())
	}
	for _, m := range ms {
		var bad []windowRun
		for _, d := range delays {
			for _, r := range results[m][d] {
				if r.outcome != out143 {
					bad = append(bad, r)
				}
			}
		}
		if len(bad) == 0 {
			fmt.Printf("%s: 143 in every run\n", m)
			continue
		}
		var lastSent time.Duration
		for _, r := range bad {
			lastSent = max(lastSent, r.sent)
		}
		fmt.Printf("%s: %d runs not 143; the latest was sent %.2f ms after exec; the most CPU it had used before one of them: %.2f ms\n",
			m, len(bad), float64(lastSent)/1e6, float64(worstCPU(delays, results[m]))/1e6)
		for _, r := range bad {
			if r.outcome == outOther {
				fmt.Printf("  %s at %v: %s\n", m, r.delay, r.detail)
			}
		}
	}
}

// checkWindow returns an error for every property that does not hold.
func checkWindow(ms []string, delays []time.Duration, results map[string]map[time.Duration][]windowRun, maxCPU, maxWall time.Duration) error {
	var problems []string
	for _, m := range ms {
		floor := strings.HasPrefix(m, floorPrefix)
		for _, d := range delays {
			for _, r := range results[m][d] {
				switch {
				case r.outcome == outOther:
					problems = append(problems, fmt.Sprintf("%s, %v: %s", m, d, r.detail))
				case r.outcome == out143, floor:
				case maxCPU > 0 && r.cpu >= maxCPU:
					problems = append(problems, fmt.Sprintf("%s, %v: %s although spotinit had used %v of CPU", m, d, r.outcome, r.cpu.Round(time.Microsecond)))
				case maxWall > 0 && r.delay >= maxWall:
					problems = append(problems, fmt.Sprintf("%s, %v: %s although sent %v after exec", m, d, r.outcome, r.sent.Round(time.Microsecond)))
				}
			}
		}
	}
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("and %d more", len(problems)-10))
		}
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
