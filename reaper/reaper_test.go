package reaper

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

func startReaper(t *testing.T) *Reaper {
	t.Helper()
	r, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func shell(script string) (string, []string, *syscall.ProcAttr) {
	return "/bin/sh", []string{"sh", "-c", script}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}, Env: os.Environ()}
}

// TestExitStatusNeverLost starts thousands of children from several
// goroutines at once. Each child leaves orphans behind that exit at the same
// moment as it does, so the reaper's wait4(-1) is busy reaping orphans
// exactly when each child's own status arrives. Every child's status must
// reach the one who started it, unchanged.
func TestExitStatusNeverLost(t *testing.T) {
	r := startReaper(t)
	runs := 3000
	if testing.Short() {
		runs = 300
	}
	const workers = 6
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < runs; i += workers {
				code := i % 256
				// The subshells outlive sh for a moment and become orphans.
				pid, exit, err := r.Start(shell(fmt.Sprintf("(exit 1) & (exit 2) & (exit 3) & exit %d", code)))
				if err != nil {
					errs <- err
					return
				}
				select {
				case e := <-exit:
					if e.Pid != pid || e.Code() != code {
						errs <- fmt.Errorf("run %d: got pid %d code %d, want pid %d code %d", i, e.Pid, e.Code(), pid, code)
						return
					}
				case <-time.After(20 * time.Second):
					errs <- fmt.Errorf("run %d: exit status of pid %d lost", i, pid)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Without orphans being reaped alongside, the test would prove nothing.
	deadline := time.Now().Add(20 * time.Second)
	for r.Orphans() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling interval
	}
	if r.Orphans() == 0 {
		t.Fatal("no orphan was reaped: the race was never exercised")
	}
	t.Logf("%d runs, %d orphans reaped alongside", runs, r.Orphans())
}

func TestExitCodes(t *testing.T) {
	r := startReaper(t)
	for _, tc := range []struct {
		script string
		code   int
	}{
		{"exit 0", 0},
		{"exit 42", 42},
		{"kill -TERM $$", 143},
		{"kill -KILL $$", 137},
	} {
		_, exit, err := r.Start(shell(tc.script))
		if err != nil {
			t.Fatal(err)
		}
		if e := <-exit; e.Code() != tc.code {
			t.Errorf("%q: code %d, want %d", tc.script, e.Code(), tc.code)
		}
	}
}

func TestStartFailure(t *testing.T) {
	r := startReaper(t)
	_, _, err := r.Start("/nonexistent/program", []string{"x"}, &syscall.ProcAttr{})
	if err == nil {
		t.Fatal("want an error for a missing program")
	}
	// A failed start must leave nothing behind for the reaper to count.
	if r.Reap() {
		t.Error("children remain after a failed start")
	}
}

func TestEmptySignalsNoChildren(t *testing.T) {
	r := startReaper(t)
	_, exit, err := r.Start(shell("exit 0"))
	if err != nil {
		t.Fatal(err)
	}
	<-exit
	select {
	case <-r.Empty():
	case <-time.After(20 * time.Second):
		t.Fatal("Empty never fired after the last child exited")
	}
	if r.Reap() {
		t.Error("Reap reports children after the last one exited")
	}
}
