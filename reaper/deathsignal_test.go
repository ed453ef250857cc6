package reaper

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// onDyingThread runs f on an OS thread that exits as soon as f returns: the
// goroutine locks itself to its thread and returns without unlocking, and
// the Go runtime then ends the thread. It returns once the thread is gone
// from /proc, that is after the kernel has sent the parent-death signal of
// every process forked on it.
func onDyingThread(t *testing.T, f func()) {
	t.Helper()
	// The caller's thread (often the main one) cannot run the goroutine
	// while the caller is locked to it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	release := make(chan struct{})
	defer close(release)
	for try := 0; ; try++ {
		tid := make(chan int, 1)
		go func() {
			runtime.LockOSThread()
			if syscall.Gettid() == os.Getpid() {
				// The runtime never ends the main thread, only parks it:
				// hold it until the end, so that the next try runs on
				// another.
				tid <- 0
				<-release
				runtime.UnlockOSThread()
				return
			}
			f()
			tid <- syscall.Gettid()
			// Returns locked: the runtime ends this thread.
		}()
		id := <-tid
		if id == 0 {
			if try > 10 {
				t.Fatal("the goroutine always ran on the main thread")
			}
			continue
		}
		task := "/proc/self/task/" + strconv.Itoa(id)
		deadline := time.Now().Add(20 * time.Second)
		for {
			if _, err := os.Stat(task); os.IsNotExist(err) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("thread %d did not exit", id)
			}
			time.Sleep(time.Millisecond) // polling interval
		}
	}
}

// sleeper is a process with SIGTERM's default action that lives until it
// is killed.
func sleeper() (string, []string, *syscall.ProcAttr) {
	return "/bin/sleep", []string{"sleep", "600"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}}
}

// TestDeathSignalFollowsTheForkingThread is the control that makes the
// next test mean something: forked from a thread that then exits, a child
// gets its parent-death signal while the forking process lives on
// (golang/go#27505).
func TestDeathSignalFollowsTheForkingThread(t *testing.T) {
	var pid int
	onDyingThread(t, func() {
		path, argv, attr := sleeper()
		attr.Sys = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		var err error
		if pid, err = syscall.ForkExec(path, argv, attr); err != nil {
			t.Error(err)
		}
	})
	if pid == 0 {
		return
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	// SIGKILL now can only be the first fatal signal if SIGTERM was not
	// sent when the thread exited.
	_ = syscall.Kill(pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("the child ended with %v, want SIGTERM: forking from a dying thread did not fire the parent-death signal, so TestDeathSignalNeverFiresWhileSpotinitLives proves nothing", ws)
	}
}

// TestDeathSignalNeverFiresWhileSpotinitLives starts a child with a
// parent-death signal from a goroutine whose thread then exits, and lets
// more threads come and go: the child must not be signalled, because the
// reaper forks on its own thread, which lives as long as the process.
func TestDeathSignalNeverFiresWhileSpotinitLives(t *testing.T) {
	r, err := New(Config{DeathSignal: syscall.SIGTERM})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var (
		pid   int
		exitC <-chan Exit
	)
	onDyingThread(t, func() {
		if pid, exitC, err = r.Start(sleeper()); err != nil {
			t.Error(err)
		}
	})
	if pid == 0 {
		return
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	for range 8 {
		onDyingThread(t, func() {})
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		select {
		case e := <-exitC:
			t.Fatalf("the child ended with %v (code %d) while its parent lived", e.Status, e.Code())
		case <-time.After(20 * time.Second):
			t.Fatal(err)
		}
	}
	if !slices.Contains(strings.Split(string(b), "\n"), "PPid:\t"+strconv.Itoa(os.Getpid())) {
		t.Fatalf("the child's parent is not this process:\n%s", b)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	select {
	case e := <-exitC:
		if !e.Status.Signaled() || e.Status.Signal() != syscall.SIGKILL {
			t.Fatalf("the child ended with %v (code %d), want SIGKILL: its parent-death signal fired while its parent lived", e.Status, e.Code())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the child's exit was never reported")
	}
}

// TestDeathSignalSetWhereAsked checks which processes get the Reaper's
// DeathSignal: those whose SysProcAttr sets none (and without changing the
// caller's), not those that set their own.
func TestDeathSignalSetWhereAsked(t *testing.T) {
	own := &syscall.ProcAttr{Sys: &syscall.SysProcAttr{Setpgid: true}}
	got := withDeathSignal(own, syscall.SIGTERM)
	if got.Sys.Pdeathsig != syscall.SIGTERM || !got.Sys.Setpgid {
		t.Errorf("got %+v, want Pdeathsig SIGTERM and Setpgid kept", got.Sys)
	}
	if own.Sys.Pdeathsig != 0 {
		t.Error("the caller's SysProcAttr was changed")
	}
	if got := withDeathSignal(&syscall.ProcAttr{}, syscall.SIGHUP); got.Sys == nil || got.Sys.Pdeathsig != syscall.SIGHUP {
		t.Errorf("no SysProcAttr: got %+v, want Pdeathsig SIGHUP", got.Sys)
	}
	set := &syscall.ProcAttr{Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}}
	if got := withDeathSignal(set, syscall.SIGTERM); got.Sys.Pdeathsig != syscall.SIGKILL {
		t.Errorf("the caller's own signal was replaced by %v", got.Sys.Pdeathsig)
	}
	if got := withDeathSignal(own, 0); got.Sys.Pdeathsig != 0 {
		t.Errorf("DeathSignal 0 set %v", got.Sys.Pdeathsig)
	}
}
