package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// mode is how an init runs: as PID 1 of a new PID namespace (as in a
// container) or as a plain process (a subreaper where the init can be one).
type mode int

const (
	pid1 mode = iota
	plain
)

func (m mode) String() string {
	if m == pid1 {
		return "PID 1"
	}
	return "plain"
}

// tracker remembers every process the bench started and has not yet seen
// exit, so that an interrupted run leaves nothing behind.
type tracker struct {
	mu   sync.Mutex
	live map[int]bool
}

func (t *tracker) add(pid int) {
	t.mu.Lock()
	t.live[pid] = true
	t.mu.Unlock()
}

func (t *tracker) remove(pid int) {
	t.mu.Lock()
	delete(t.live, pid)
	t.mu.Unlock()
}

// killAll sends SIGKILL to every live process (for a PID 1 that ends its
// whole namespace) and to their children.
func (t *tracker) killAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for pid := range t.live {
		for _, c := range children(pid) {
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// spawn forks and execs argv with stdout on out (nil: /dev/null) and stderr
// on errf (nil: /dev/null), in a new PID namespace when m is pid1. It does
// not wait.
func (b *bench) spawn(argv, env []string, m mode, out *os.File) (int, error) {
	stdout := b.devnull.Fd()
	if out != nil {
		stdout = out.Fd()
	}
	attr := &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{b.devnull.Fd(), stdout, b.stderr.Fd()},
		Sys:   &syscall.SysProcAttr{},
	}
	if m == pid1 {
		attr.Sys.Cloneflags = syscall.CLONE_NEWPID
	}
	pid, err := syscall.ForkExec(argv[0], argv, attr)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", filepath.Base(argv[0]), err)
	}
	b.track.add(pid)
	return pid, nil
}

// reap waits for pid and forgets it.
func (b *bench) reap(pid int) (syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		b.track.remove(pid)
		return ws, err
	}
}

// proc is a started process whose stdout the bench reads line by line and
// whose exit a goroutine waits for.
type proc struct {
	b    *bench
	pid  int
	out  *os.File
	rd   *bufio.Reader
	done chan struct{} // closed when the process has been reaped
	ws   syscall.WaitStatus
	kids []int // the init's children when the child said it was ready
}

// start spawns argv with its stdout on a pipe that the bench reads.
func (b *bench) start(argv, env []string, m mode) (*proc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	pid, err := b.spawn(argv, env, m, w)
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	p := &proc{b: b, pid: pid, out: r, rd: bufio.NewReader(r), done: make(chan struct{})}
	go func() {
		p.ws, _ = b.reap(pid)
		close(p.done)
	}()
	return p, nil
}

// line reads one line of the process's stdout within d.
func (p *proc) line(d time.Duration) (string, error) {
	if err := p.out.SetReadDeadline(time.Now().Add(d)); err != nil {
		return "", err
	}
	s, err := p.rd.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read from pid %d: %w", p.pid, err)
	}
	return strings.TrimSpace(s), nil
}

// ready waits for the helper's "R" line.
func (p *proc) ready(d time.Duration) error {
	s, err := p.line(d)
	if err != nil {
		return err
	}
	if s != "R" {
		return fmt.Errorf("pid %d: want R, got %q", p.pid, s)
	}
	p.kids = children(p.pid)
	return nil
}

// int64Line reads a line holding a number, after an optional prefix.
func (p *proc) int64Line(prefix string, d time.Duration) (int64, error) {
	s, err := p.line(d)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimPrefix(s, prefix), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("pid %d: want a number, got %q", p.pid, s)
	}
	return v, nil
}

// wait waits up to d for the process to exit.
func (p *proc) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// stop ends the process: SIGTERM, up to 2 s of grace, then SIGKILL to it
// and to its children (for a PID 1 the kernel kills the rest of the
// namespace). It always returns after the process has been reaped.
//
// Children seen at ready that outlived an init which died early (a plain
// init killed by a signal it should have caught) get SIGKILL too, so that a
// failed run leaves nothing behind.
func (p *proc) stop() {
	select {
	case <-p.done:
	default:
		kids := children(p.pid)
		_ = syscall.Kill(p.pid, syscall.SIGTERM)
		if !p.wait(2 * time.Second) {
			for _, c := range kids {
				_ = syscall.Kill(c, syscall.SIGKILL)
			}
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
			<-p.done
		}
	}
	p.killStrays()
	p.out.Close()
}

// killStrays kills the children seen at ready that are still alive and no
// longer the init's (reparented elsewhere after the init died).
func (p *proc) killStrays() {
	for _, c := range p.kids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c))
		if err != nil {
			continue // gone
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 1 && f[1] != strconv.Itoa(p.pid) {
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
	}
}

// children lists the children of every thread of pid (a Go init's children
// may hang off any of its threads).
func children(pid int) []int {
	tids, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range tids {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// tasks lists pid's threads.
func tasks(pid int) []string {
	ts, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	return ts
}

// usage is what /proc says about a process at one moment.
type usage struct {
	cpuNs    int64 // CPU time of the process (ownCPU), else of its live threads (schedstat), else utime+stime
	switches int64 // voluntary + involuntary context switches of all live threads
	threads  int
}

func readUsage(pid int) (usage, error) {
	var u usage
	ts := tasks(pid)
	if len(ts) == 0 {
		return u, fmt.Errorf("pid %d: no tasks", pid)
	}
	u.threads = len(ts)
	schedOK := true
	for _, t := range ts {
		if data, err := os.ReadFile(t + "/schedstat"); err == nil && schedOK {
			if f := strings.Fields(string(data)); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				u.cpuNs += n
			}
		} else {
			schedOK = false
		}
		data, err := os.ReadFile(t + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				u.switches += n
			}
		}
	}
	if c, err := ownCPU(pid); err == nil {
		u.cpuNs, schedOK = c, true
	}
	if !schedOK {
		// utime and stime in clock ticks (USER_HZ, 100 on Linux).
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return u, err
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		u.cpuNs = (ut + st) * 10_000_000
	}
	return u, nil
}

// memory is what a process's pages cost, in KiB, from
// /proc/PID/smaps_rollup: anonymous memory (heap, stacks, the private
// copies of written data pages: what no other process shares and the page
// cache cannot give back), the proportional set size (each resident page
// divided among the processes mapping it) and the resident set size.
type memory struct{ anon, pss, rss int64 }

func readMemory(pid int) (memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Anonymous:":
			m.anon = n
		case "Rss:":
			m.rss = n
		case "Pss:":
			m.pss = n
		}
	}
	return m, nil
}

// fmtMem formats anonymous / PSS / RSS.
func fmtMem(m memory) string {
	return fmt.Sprintf("%s / %s / %s", fmtMiB(float64(m.anon)), fmtMiB(float64(m.pss)), fmtMiB(float64(m.rss)))
}

// loadavg is the 1-minute load average.
func loadavg() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// raiseNofile lifts the soft limit on open files to at least n (the zombie
// figure holds a pidfd per orphan).
func raiseNofile(n uint64) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		return nil
	}
	if lim.Max < n {
		lim.Max = n // needs CAP_SYS_RESOURCE
	}
	lim.Cur = n
	return unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
}

// ownCPU is the CPU time the process pid has used itself, all its threads
// included (those that have exited too), its children not: the total that
// /proc/PID/stat gives as utime + stime, read instead from the process's
// CPU-time clock (clock_getcpuclockid), which has nanoseconds where
// /proc/PID/stat has 10 ms ticks. Linux lets any process read another's.
func ownCPU(pid int) (int64, error) {
	const cpuclockSched = 2
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(^pid)<<3|cpuclockSched, &ts); err != nil {
		return 0, fmt.Errorf("pid %d: CPU clock: %w", pid, err)
	}
	return ts.Nano(), nil
}
