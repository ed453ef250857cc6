package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/spotinit/spotinit/supervisor"
	"golang.org/x/sys/unix"
)

// testChild is the one helper child of the scripts. It runs its actions in
// order:
//
//	trap FILE SIGS    record each of SIGS (comma-separated) it receives, a line each, in FILE
//	ignore SIGS       ignore SIGS
//	ready FILE        write "PID PPID PGID SID" (as /proc shows them) to FILE, atomically
//	waitsig SIG       block until a trapped SIG has arrived
//	sleep D           sleep for duration D
//	await FILE        wait until FILE exists (bounded)
//	print TEXT        print TEXT on stdout
//	exit N            exit with status N
//	kill SIG          die from SIG (its default action)
//	hang              block until killed
//	bg ACTIONS        start another testchild with ACTIONS (one argument, space-separated), not waited for
//	bgsid ACTIONS     the same, in a new session
//	daemon ACTIONS    the same, in a new session with stdio on /dev/null
//	orphans N         make N orphans, check they come to this process's parent, release them at once,
//	                  and wait until the parent has reaped every one
//	burst N           make N orphans that exit the moment this process exits (they read a pipe whose
//	                  only writer is this process)
//	storm N D         make N short-lived orphans in batches over duration D, a third of them in
//	                  new sessions and a third in new process groups
//	tty               print how stdin's terminal relates to this process
//	readline          read a line from stdin and print it
//	sigstate          print SigIgn and SigBlk from /proc/self/status
//	env NAME          print NAME=value or NAME unset
//	fds               print the descriptors it inherited: those open without close-on-exec
//	                  (every descriptor Go opens itself has it)
//
// It writes "ready" files only after the actions before them (handlers) are
// in place.
func testChild(args []string) int {
	c := &child{got: make(map[string]int), cond: sync.NewCond(new(sync.Mutex))}
	for len(args) > 0 {
		act := args[0]
		n := map[string]int{"trap": 2, "ignore": 1, "ready": 1, "waitsig": 1, "sleep": 1, "print": 1,
			"exit": 1, "kill": 1, "hang": 0, "bg": 1, "bgsid": 1, "daemon": 1, "orphans": 1, "tty": 0, "readline": 0,
			"sigstate": 0, "env": 1, "fds": 0, "orphan-maker": 4, "await": 1, "burst": 1, "storm": 2}[act]
		if len(args) < n+1 {
			fmt.Fprintf(os.Stderr, "testchild: %s needs %d arguments\n", act, n)
			return 90
		}
		a := args[1 : n+1]
		args = args[n+1:]
		if code, stop := c.do(act, a); stop {
			return code
		}
	}
	return 0
}

type child struct {
	cond *sync.Cond
	got  map[string]int
	keep []*os.File // kept open until exit
}

func (c *child) do(act string, a []string) (int, bool) {
	fail := func(format string, args ...any) (int, bool) {
		fmt.Fprintf(os.Stderr, "testchild: "+format+"\n", args...)
		return 91, true
	}
	switch act {
	case "trap":
		sigs, err := parseSigs(a[1])
		if err != nil {
			return fail("%v", err)
		}
		f, err := os.OpenFile(a[0], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fail("%v", err)
		}
		ch := make(chan os.Signal, 1024)
		signal.Notify(ch, sigs...)
		go func() {
			for s := range ch {
				name := supervisor.SignalName(s.(syscall.Signal))
				fmt.Fprintln(f, name)
				c.cond.L.Lock()
				c.got[name]++
				c.cond.Broadcast()
				c.cond.L.Unlock()
			}
		}()
	case "ignore":
		sigs, err := parseSigs(a[0])
		if err != nil {
			return fail("%v", err)
		}
		signal.Ignore(sigs...)
	case "ready":
		pid, ppid, pgid, sid := procIDs()
		if err := writeAtomic(a[0], fmt.Sprintf("%d %d %d %d\n", pid, ppid, pgid, sid)); err != nil {
			return fail("%v", err)
		}
	case "waitsig":
		sig, err := supervisor.ParseSignal(a[0])
		if err != nil {
			return fail("%v", err)
		}
		name := supervisor.SignalName(sig)
		c.cond.L.Lock()
		for c.got[name] == 0 {
			c.cond.Wait()
		}
		c.cond.L.Unlock()
	case "sleep":
		d, err := time.ParseDuration(a[0])
		if err != nil {
			return fail("%v", err)
		}
		time.Sleep(d)
	case "await":
		deadline := time.Now().Add(waitTimeout)
		for {
			if _, err := os.Stat(a[0]); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fail("timed out waiting for %s", a[0])
			}
			time.Sleep(5 * time.Millisecond) // polling interval
		}
	case "print":
		fmt.Println(a[0])
	case "exit":
		n, err := strconv.Atoi(a[0])
		if err != nil {
			return fail("%v", err)
		}
		return n, true
	case "kill":
		sig, err := supervisor.ParseSignal(a[0])
		if err != nil {
			return fail("%v", err)
		}
		// The Go runtime ignores some signals it was not asked about;
		// a shell exec'd in this process's place has the defaults.
		err = syscall.Exec("/bin/sh", []string{"sh", "-c", fmt.Sprintf("kill -%d $$; sleep 5", sig)}, os.Environ())
		return fail("exec sh: %v", err)
	case "hang":
		for {
			time.Sleep(time.Hour)
		}
	case "bg", "bgsid", "daemon":
		cmd := exec.Command(os.Args[0], strings.Fields(a[0])...)
		if act != "daemon" {
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: act != "bg"}
		if err := cmd.Start(); err != nil {
			return fail("%v", err)
		}
		// Never waited for: it becomes an orphan when this process exits.
		_ = cmd.Process.Release()
	case "orphans":
		n, err := strconv.Atoi(a[0])
		if err != nil {
			return fail("%v", err)
		}
		if err := orphans(n); err != nil {
			return fail("orphans: %v", err)
		}
	case "orphan-maker":
		n, _ := strconv.Atoi(a[0])
		fd, _ := strconv.Atoi(a[1])
		mode, _ := strconv.Atoi(a[2])
		return orphanMaker(n, fd, mode, a[3]), true
	case "burst":
		n, err := strconv.Atoi(a[0])
		if err != nil {
			return fail("%v", err)
		}
		w, _, err := makeOrphans(n, 0, false)
		if err != nil {
			return fail("burst: %v", err)
		}
		c.keep = append(c.keep, w) // closed by this process's exit: the orphans exit with it
	case "storm":
		n, err := strconv.Atoi(a[0])
		if err != nil {
			return fail("%v", err)
		}
		d, err := time.ParseDuration(a[1])
		if err != nil {
			return fail("%v", err)
		}
		if err := storm(n, d); err != nil {
			return fail("storm: %v", err)
		}
	case "tty":
		printTTY()
	case "readline":
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			return fail("readline: %v", err)
		}
		fmt.Printf("read: %s\n", strings.TrimSpace(line))
	case "sigstate":
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return fail("%v", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "SigIgn:") || strings.HasPrefix(l, "SigBlk:") {
				fmt.Println(l)
			}
		}
	case "fds":
		var open []string
		for fd := 0; fd < 1024; fd++ {
			if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
				open = append(open, strconv.Itoa(fd))
			}
		}
		fmt.Println("inherited fds:", strings.Join(open, " "))
	case "env":
		if v, ok := os.LookupEnv(a[0]); ok {
			fmt.Printf("%s=%s\n", a[0], v)
		} else {
			fmt.Printf("%s unset\n", a[0])
		}
	default:
		return fail("unknown action %q", act)
	}
	return 0, false
}

func parseSigs(s string) ([]os.Signal, error) {
	var out []os.Signal
	for _, f := range strings.Split(s, ",") {
		sig, err := supervisor.ParseSignal(f)
		if err != nil {
			return nil, err
		}
		out = append(out, sig)
	}
	return out, nil
}

// procIDs returns pid, ppid, pgid and sid as /proc shows them, which is the
// outer namespace's view when /proc was mounted there: the scripts signal
// and inspect processes from outside.
func procIDs() (pid, ppid, pgid, sid int) {
	b, _ := os.ReadFile("/proc/self/stat")
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	pid, _ = strconv.Atoi(strings.Fields(s)[0])
	ppid, _ = strconv.Atoi(f[1])
	pgid, _ = strconv.Atoi(f[2])
	sid, _ = strconv.Atoi(f[3])
	return
}

// procStat reads pid's parent, state and start time (in clock ticks after
// boot; it tells a process from a later one given the same pid) from
// /proc/PID/stat. ok is false when there is no such process.
func procStat(pid int) (ppid int, state, start string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", "", false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return 0, "", "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0], f[19], true
}

// orphans makes n processes whose parent exits at once, so that they come
// to this process's parent (spotinit, as PID 1 or as a subreaper), checks
// that they did, then lets them all exit at the same moment and waits until
// the parent has reaped every one. It watches those n processes only, by
// pid and start time: the parent may have other children coming and going.
func orphans(n int) error {
	_, parent, _, _ := procIDs()
	w, pids, err := makeOrphans(n, 0, true)
	if err != nil {
		return err
	}
	left := make(map[int]string, n) // pid -> start time
	for _, pid := range pids {
		if ppid, _, start, ok := procStat(pid); ok && ppid == parent {
			left[pid] = start
		}
	}
	if len(left) < n {
		w.Close()
		return fmt.Errorf("only %d of %d orphans came to the parent %d", len(left), n, parent)
	}
	fmt.Printf("orphans adopted: %d\n", n)
	start := time.Now()
	bound := waitTimeout + time.Duration(n)*reapPerOrphanBound
	w.Close() // every orphan's read returns: they all exit now
	for poll := 5 * time.Millisecond; ; poll = min(poll*3/2, 100*time.Millisecond) {
		zombies := 0
		for pid, born := range left {
			_, state, start, ok := procStat(pid)
			switch {
			case !ok || start != born: // reaped (and perhaps its pid reused)
				delete(left, pid)
			case state == "Z":
				zombies++
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Since(start) > bound {
			return fmt.Errorf("%d orphans (%d zombies) still there after %s", len(left), zombies, bound)
		}
		time.Sleep(poll) // polling interval
	}
	fmt.Printf("orphans reaped: %d in %s\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// makeOrphans makes n orphans that block reading a pipe and exit when its
// write end, returned, is closed. With withPids it returns their pids too.
// mode 1 puts each in a new session, 2 in a new process group.
func makeOrphans(n, mode int, withPids bool) (*os.File, []int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	pidfile := "-"
	if withPids {
		f, err := os.CreateTemp("", "orphans")
		if err != nil {
			w.Close()
			return nil, nil, err
		}
		f.Close()
		defer os.Remove(f.Name())
		pidfile = f.Name()
	}
	maker := exec.Command(os.Args[0], "orphan-maker", strconv.Itoa(n), "3", strconv.Itoa(mode), pidfile)
	maker.ExtraFiles = []*os.File{r}
	maker.Stderr = os.Stderr
	if err := maker.Run(); err != nil { // the maker is our own child: ours to wait for
		w.Close()
		return nil, nil, fmt.Errorf("maker: %v", err)
	}
	if !withPids {
		return w, nil, nil
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		w.Close()
		return nil, nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		pids = append(pids, pid)
	}
	return w, pids, nil
}

// storm makes n short-lived orphans in batches spread over d.
func storm(n int, d time.Duration) error {
	const batch = 500
	batches := (n + batch - 1) / batch
	start := time.Now()
	for b := 0; b < batches; b++ {
		k := min(batch, n-b*batch)
		w, _, err := makeOrphans(k, b%3, false)
		if err != nil {
			return err
		}
		w.Close() // they exit now
		if next := start.Add(d * time.Duration(b+1) / time.Duration(batches)); time.Until(next) > 0 {
			time.Sleep(time.Until(next)) // pacing the storm, not waiting for state
		}
	}
	return nil
}

var orphanBuf [1]byte

// orphanMaker forks n bare copies of itself that block reading fd and then
// exit, writes their pids to pidfile (unless it is "-"), and exits at once
// so that they are orphans. The copies run only raw system calls: a forked
// Go process has one thread and must not re-enter the runtime.
func orphanMaker(n, fd, mode int, pidfile string) int {
	defer func() {
		if pidfile == "-" {
			return
		}
		// The pids as /proc shows them, which is the outer namespace's view
		// when the maker runs in a new PID namespace: clone returned the
		// inner ones.
		self, _, _, _ := procIDs()
		var pids []string
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if ppid, _, _, ok := procStat(pid); ok && ppid == self {
				pids = append(pids, e.Name())
			}
		}
		if err := os.WriteFile(pidfile, []byte(strings.Join(pids, "\n")), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "orphan-maker: %v\n", err)
		}
	}()
	for i := 0; i < n; i++ {
		pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
		if errno != 0 {
			fmt.Fprintf(os.Stderr, "orphan-maker: clone: %v after %d\n", errno, i)
			return 1
		}
		if pid == 0 {
			switch mode {
			case 1:
				syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0)
			case 2:
				syscall.RawSyscall(syscall.SYS_SETPGID, 0, 0, 0)
			}
			syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&orphanBuf[0])), 1)
			syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
		}
	}
	return 0
}

func printTTY() {
	_, err := unix.IoctlGetTermios(0, unix.TCGETS)
	fmt.Printf("stdin-tty=%v\n", err == nil)
	if err != nil {
		return
	}
	fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	fmt.Printf("foreground=%v\n", err == nil && fg == unix.Getpgrp())
	sid, err := unix.IoctlGetInt(0, unix.TIOCGSID)
	mysid, _ := unix.Getsid(0)
	fmt.Printf("ctty=%v\n", err == nil && sid == mysid)
}
