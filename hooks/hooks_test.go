package hooks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spotinit/spotinit/reaper"
)

// slack is what a loaded machine (and -race) may add to a measured time.
// The bounds it widens catch a Run that waits for what it must not (a
// hook's leftover output, a stuck writer, a hook past its timeout): without
// the fix those hold Run until runBounded gives up at waitLimit, well above
// any bound with slack in it.
const slack = 5 * time.Second

func TestRunInOrder(t *testing.T) {
	cfg, lb, _ := testConfig(t)
	f := filepath.Join(t.TempDir(), "order")
	hooks := Commands("pre-stop", []string{
		"echo one >> " + f,
		"echo two >> " + f,
		"echo three >> " + f,
	})
	res, _ := runBounded(t, context.Background(), cfg, hooks, time.Time{}, waitLimit)
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "one\ntwo\nthree\n"; got != want {
		t.Errorf("hooks ran as %q, want %q", got, want)
	}
	for i, r := range res {
		if want := fmt.Sprintf("pre-stop[%d]", i+1); r.Name != want || r.Code != 0 || r.Err != nil || r.TimedOut {
			t.Errorf("result %d: %+v, want %s with code 0", i, r, want)
		}
	}
	lb.wantLog(t, "hook finished", "name=pre-stop[3]", "code=0")
	lb.wantLog(t, "hook started", "name=pre-stop[1]")
	wantNoCopiers(t)
}

func TestCommands(t *testing.T) {
	got := Commands("on-rebalance", []string{"a b", "c"})
	want := []Hook{
		{Name: "on-rebalance[1]", Path: "/bin/sh", Argv: []string{"sh", "-c", "a b"}},
		{Name: "on-rebalance[2]", Path: "/bin/sh", Argv: []string{"sh", "-c", "c"}},
	}
	if !slices.EqualFunc(got, want, func(a, b Hook) bool {
		return a.Name == b.Name && a.Path == b.Path && slices.Equal(a.Argv, b.Argv)
	}) {
		t.Errorf("Commands = %+v, want %+v", got, want)
	}
}

// TestEnvironment checks that hooks get exactly Config.Env, and spotinit's
// own environment only when Env is nil.
func TestEnvironment(t *testing.T) {
	t.Setenv("HOOKS_TEST_OUTER", "outer")
	cfg, _, _ := testConfig(t)
	dir := t.TempDir()
	cfg.Env = []string{"PATH=/usr/bin:/bin", "SPOTINIT_EVENT=spot-interruption", "FOO=a b"}
	script := `printf '%s|%s|%s\n' "$SPOTINIT_EVENT" "$FOO" "${HOOKS_TEST_OUTER-unset}" > "$0"`
	runBounded(t, context.Background(), cfg, []Hook{{Name: "env", Path: "/bin/sh", Argv: []string{"sh", "-c", script, filepath.Join(dir, "given")}}}, time.Time{}, waitLimit)
	cfg.Env = nil
	runBounded(t, context.Background(), cfg, []Hook{{Name: "env", Path: "/bin/sh", Argv: []string{"sh", "-c", script, filepath.Join(dir, "nil")}}}, time.Time{}, waitLimit)
	for file, want := range map[string]string{
		"given": "spot-interruption|a b|unset\n",
		"nil":   "||outer\n",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("Env %s: hook saw %q, want %q", file, b, want)
		}
	}
}

// TestStdioAndProcessGroup looks at a running hook from outside: stdin is
// /dev/null, stdout and stderr are one pipe, no other descriptor leaked
// into it, and it leads a process group of its own.
func TestStdioAndProcessGroup(t *testing.T) {
	cfg, _, _ := testConfig(t)
	// A descriptor without close-on-exec, as spotinit may inherit one from
	// whoever started it: it must not reach the hook.
	leak, err := syscall.Open("/dev/null", syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(leak)
	pidf := filepath.Join(t.TempDir(), "pid")
	// mv runs in a child, so the shell holds no redirection while the test
	// looks at it.
	hook := sh("fds", `echo $$ > "$0.tmp"; mv "$0.tmp" "$0"; while :; do sleep 1; done`)
	hook.Argv = append(hook.Argv, pidf)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan []Result, 1)
	go func() { done <- Run(ctx, cfg, []Hook{hook}, time.Time{}) }()
	pid := readPid(t, pidf)
	killOnCleanup(t, pid)

	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	links := map[string]string{}
	for _, e := range entries {
		names = append(names, e.Name())
		links[e.Name()], _ = os.Readlink(filepath.Join(fdDir, e.Name()))
	}
	if !slices.Equal(names, []string{"0", "1", "2"}) {
		t.Errorf("hook has fds %v (%v), want exactly 0 1 2", names, links)
	}
	if links["0"] != "/dev/null" {
		t.Errorf("stdin is %q, want /dev/null", links["0"])
	}
	if !strings.HasPrefix(links["1"], "pipe:") || links["1"] != links["2"] {
		t.Errorf("stdout %q and stderr %q, want the same pipe", links["1"], links["2"])
	}
	if _, pgrp, ok := procStat(pid); !ok || pgrp != pid {
		t.Errorf("hook %d is in process group %d, want its own", pid, pgrp)
	}

	cancel()
	select {
	case res := <-done:
		if res[0].Code != 128+int(syscall.SIGKILL) || res[0].Err != nil {
			t.Errorf("cancelled hook: %+v", res[0])
		}
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after cancel")
	}
	wantDead(t, "hook", pid)
}

// groupHook returns a hook that starts `sleep 100` in the background (in
// its group), records its own and the sleep's pid, then runs body.
func groupHook(t *testing.T, name, body string) (Hook, string) {
	dir := t.TempDir()
	h := sh(name, `sleep 100 & echo $! > "$0/bg.tmp"; mv "$0/bg.tmp" "$0/bg"; echo $$ > "$0/sh.tmp"; mv "$0/sh.tmp" "$0/sh"; `+body)
	h.Argv = append(h.Argv, dir)
	return h, dir
}

// TestTimeoutKillsGroup: when a hook's time is up, the hook and its
// background job both get SIGKILL, and Run returns within Grace.
func TestTimeoutKillsGroup(t *testing.T) {
	cfg, lb, _ := testConfig(t)
	cfg.Timeout = 500 * time.Millisecond
	h, dir := groupHook(t, "slow", "wait")
	res, took := runBounded(t, context.Background(), cfg, []Hook{h}, time.Time{}, waitLimit)
	shPid, bgPid := readPid(t, filepath.Join(dir, "sh")), readPid(t, filepath.Join(dir, "bg"))
	killOnCleanup(t, bgPid)
	killOnCleanup(t, shPid)
	r := res[0]
	if !r.TimedOut || !r.Killed || r.Cancelled || r.Code != 128+int(syscall.SIGKILL) || r.Err != nil {
		t.Errorf("result %+v, want timed out with code 137", r)
	}
	if took < cfg.Timeout || took > cfg.Timeout+Grace+slack {
		t.Errorf("Run took %v with a timeout of %v", took, cfg.Timeout)
	}
	wantDead(t, "the hook", shPid)
	wantDead(t, "the hook's background job", bgPid)
	lb.wantLog(t, "hook timed out", "name=slow", "code=137")
	wantNoCopiers(t)
}

// TestIgnoredTermStillKilled: a hook that ignores SIGTERM is killed all the
// same (with SIGKILL: the code says which signal).
func TestIgnoredTermStillKilled(t *testing.T) {
	cfg, _, _ := testConfig(t)
	cfg.Timeout = 500 * time.Millisecond
	h, dir := groupHook(t, "stubborn", `trap "" TERM; while :; do sleep 1; done`)
	res, took := runBounded(t, context.Background(), cfg, []Hook{h}, time.Time{}, waitLimit)
	shPid := readPid(t, filepath.Join(dir, "sh"))
	killOnCleanup(t, shPid)
	if r := res[0]; !r.TimedOut || r.Code != 128+int(syscall.SIGKILL) {
		t.Errorf("result %+v, want timed out with code 137", r)
	}
	if took > cfg.Timeout+Grace+slack {
		t.Errorf("Run took %v with a timeout of %v", took, cfg.Timeout)
	}
	wantDead(t, "the hook", shPid)
}

// TestLeftoversKilled: a hook that exits leaving a background job in its
// process group does not leave it running.
func TestLeftoversKilled(t *testing.T) {
	cfg, lb, _ := testConfig(t)
	h, dir := groupHook(t, "forker", "exit 0")
	res, _ := runBounded(t, context.Background(), cfg, []Hook{h}, time.Time{}, waitLimit)
	bgPid := readPid(t, filepath.Join(dir, "bg"))
	killOnCleanup(t, bgPid)
	if r := res[0]; r.Code != 0 || r.TimedOut || r.Err != nil || !r.Killed {
		t.Errorf("result %+v, want code 0 and its leftovers killed", r)
	}
	wantDead(t, "the hook's background job", bgPid)
	lb.wantLog(t, "hook leftovers killed", "name=forker")
}

// TestDeadlineCutsHook: the deadline bounds a hook more tightly than its
// timeout.
func TestDeadlineCutsHook(t *testing.T) {
	cfg, _, _ := testConfig(t)
	cfg.Timeout = time.Minute
	const budget = 300 * time.Millisecond
	deadline := time.Now().Add(budget)
	res, took := runBounded(t, context.Background(), cfg, []Hook{sh("long", "while :; do sleep 1; done")}, deadline, waitLimit)
	if r := res[0]; !r.TimedOut || r.Code != 128+int(syscall.SIGKILL) {
		t.Errorf("result %+v, want timed out", r)
	}
	if took > budget+Grace+slack {
		t.Errorf("Run took %v with %v left before the deadline", took, budget)
	}
	if late := time.Since(deadline); late > Grace+slack {
		t.Errorf("Run returned %v after the deadline", late)
	}
}

// TestDeadlinePassed: hooks are not started when no time is left.
func TestDeadlinePassed(t *testing.T) {
	cfg, lb, _ := testConfig(t)
	marker := filepath.Join(t.TempDir(), "ran")
	res, _ := runBounded(t, context.Background(), cfg, []Hook{sh("late", "touch "+marker)}, time.Now().Add(-time.Second), waitLimit)
	if r := res[0]; r.Code != -1 || !r.TimedOut || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Errorf("result %+v, want not started for lack of time", r)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the hook ran after the deadline")
	}
	lb.wantLog(t, "hook skipped", "name=late")
}

// TestDaemonHoldingOutput: a hook that leaves a daemon (another session)
// holding its output pipe does not hold Run up beyond the hook's own exit
// plus Grace, and the daemon gets EPIPE once Run has closed the pipe.
func TestDaemonHoldingOutput(t *testing.T) {
	cfg, lb, out := testConfig(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pidf := filepath.Join(t.TempDir(), "daemon")
	cfg.Env = append(cfg.Env, "HOOKS_TEST_HELPER=daemon", "HOOKS_TEST_PIDFILE="+pidf, "HOOKS_TEST_BIN="+self)
	// The hook waits until the daemon has left its group, so that the
	// group kill after its exit cannot take the daemon with it.
	hook := sh("d", `"$HOOKS_TEST_BIN" & while [ ! -e "$HOOKS_TEST_PIDFILE" ]; do sleep 0.01; done; echo started`)
	res, _ := runBounded(t, context.Background(), cfg, []Hook{hook}, time.Time{}, waitLimit)
	returned := time.Now()
	pid := readPid(t, pidf)
	killOnCleanup(t, pid)
	if r := res[0]; r.Code != 0 || r.TimedOut {
		t.Errorf("result %+v, want code 0", r)
	}
	exited, ok := out.first("hook d: started\n")
	if !ok {
		t.Fatalf("no \"started\" line in the output: %q", out.all())
	}
	if held := returned.Sub(exited); held > Grace+slack {
		t.Errorf("Run returned %v after the hook's last output", held)
	}
	if !slices.Contains(out.all(), "hook d: tick\n") {
		t.Error("the daemon never wrote to the pipe: the test proves nothing")
	}
	// The copier must have stopped at the drain's read deadline, not been
	// abandoned by Run.
	if ln := lb.line("hook output stuck"); ln != "" {
		t.Errorf("the output copier outlived the drain: %s", ln)
	}
	wantDead(t, "the daemon (EPIPE)", pid)
	wantNoCopiers(t)
}

// TestStartFailures: a hook that cannot be started is reported, and the
// next one runs.
func TestStartFailures(t *testing.T) {
	cfg, lb, _ := testConfig(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		path string
		want error
	}{
		{"missing", filepath.Join(dir, "missing"), syscall.ENOENT},
		{"not-executable", writeFile(t, dir, "plain", "#!/bin/sh\n", 0o644), syscall.EACCES},
		{"no-shebang", writeFile(t, dir, "garbage", "\x01\x02not a script format\n", 0o755), syscall.ENOEXEC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := filepath.Join(dir, tc.name+".next")
			res, _ := runBounded(t, context.Background(), cfg, []Hook{
				{Name: tc.name, Path: tc.path, Argv: []string{tc.path}},
				sh("next", "touch "+marker),
			}, time.Time{}, waitLimit)
			if r := res[0]; r.Code != -1 || !errors.Is(r.Err, tc.want) || !strings.Contains(r.Err.Error(), tc.path) {
				t.Errorf("result %+v, want code -1 and %v naming %s", r, tc.want, tc.path)
			}
			if _, err := os.Stat(marker); err != nil || res[1].Code != 0 {
				t.Errorf("the next hook did not run: %+v", res[1])
			}
			lb.wantLog(t, "hook not started", "name="+tc.name)
		})
	}
}

func TestNoReaper(t *testing.T) {
	cfg, _, _ := testConfig(t)
	cfg.Reaper = nil
	res, _ := runBounded(t, context.Background(), cfg, []Hook{sh("x", "exit 0")}, time.Time{}, waitLimit)
	if res[0].Code != -1 || res[0].Err == nil {
		t.Errorf("result %+v, want not started", res[0])
	}
}

// TestFailureNextRuns: a hook exiting 1 is logged as failed and the next
// one runs.
func TestFailureNextRuns(t *testing.T) {
	cfg, lb, _ := testConfig(t)
	marker := filepath.Join(t.TempDir(), "next")
	res, _ := runBounded(t, context.Background(), cfg, []Hook{sh("bad", "exit 1"), sh("next", "touch "+marker)}, time.Time{}, waitLimit)
	if r := res[0]; r.Code != 1 || r.TimedOut || r.Err != nil || r.Killed || r.Cancelled {
		t.Errorf("result %+v, want code 1", r)
	}
	if _, err := os.Stat(marker); err != nil || res[1].Code != 0 {
		t.Errorf("the next hook did not run: %+v", res[1])
	}
	lb.wantLog(t, "hook failed", "name=bad", "code=1")
	if lb.line("hook finished", "name=bad") != "" {
		t.Error("a failed hook was logged as finished")
	}
}

// flood counts what a hook printed without keeping it.
type flood struct {
	writes, maxWrite, payload int
	bad                       string
}

func (f *flood) Write(p []byte) (int, error) {
	const prefix = "hook flood: "
	f.writes++
	f.maxWrite = max(f.maxWrite, len(p))
	s := string(p)
	if !strings.HasPrefix(s, prefix) || !strings.HasSuffix(s, "\n") {
		f.bad = s[:min(len(s), 40)]
	}
	f.payload += len(s) - len(prefix) - 1
	return len(p), nil
}

// TestOutputFlood: 5 MB without a newline passes through in bounded
// pieces, each a whole prefixed line.
func TestOutputFlood(t *testing.T) {
	cfg, _, _ := testConfig(t)
	f := &flood{}
	cfg.Output = f
	const size = 5_000_000
	res, _ := runBounded(t, context.Background(), cfg, []Hook{sh("flood", fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", size))}, time.Time{}, waitLimit)
	if res[0].Code != 0 {
		t.Errorf("result %+v", res[0])
	}
	wantNoCopiers(t) // f is read below without a lock
	if f.payload != size {
		t.Errorf("%d bytes of output arrived, want %d", f.payload, size)
	}
	if limit := len("hook flood: ") + maxLine + 1; f.maxWrite > limit {
		t.Errorf("a write of %d bytes: lines are not split at %d", f.maxWrite, maxLine)
	}
	if f.bad != "" {
		t.Errorf("a write that is not a prefixed line: %q", f.bad)
	}
}

func TestCopyLines(t *testing.T) {
	long := strings.Repeat("y", maxLine+10)
	out := &outputRecorder{}
	copyLines(out, strings.NewReader("a\n\nbb\r\n"+long+"\nlast"), "hook x: ")
	want := []string{"hook x: a\n", "hook x: \n", "hook x: bb\r\n", "hook x: " + long[:maxLine] + "\n", "hook x: " + long[maxLine:] + "\n", "hook x: last\n"}
	got := out.all()
	if len(got) != len(want) {
		t.Fatalf("copyLines made %d writes, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("write %d: %d bytes %.40q…, want %d bytes %.40q…", i, len(got[i]), got[i], len(want[i]), want[i])
		}
	}
}

// TestCancel: cancelling ctx kills the running hook at once and skips the
// rest.
func TestCancel(t *testing.T) {
	cfg, lb, _ := testConfig(t)
	dir := t.TempDir()
	h1 := sh("first", `echo $$ > "$0/pid.tmp"; mv "$0/pid.tmp" "$0/pid"; while :; do sleep 1; done`)
	h1.Argv = append(h1.Argv, dir)
	h2 := sh("second", "touch "+filepath.Join(dir, "second"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan []Result, 1)
	go func() { done <- Run(ctx, cfg, []Hook{h1, h2}, time.Time{}) }()
	pid := readPid(t, filepath.Join(dir, "pid"))
	killOnCleanup(t, pid)
	cancel()
	cancelled := time.Now()
	var res []Result
	select {
	case res = <-done:
	case <-time.After(waitLimit):
		t.Fatal("Run did not return after cancel")
	}
	if took := time.Since(cancelled); took > Grace+slack {
		t.Errorf("Run returned %v after cancel", took)
	}
	if r := res[0]; r.Code != 128+int(syscall.SIGKILL) || r.Err != nil || r.TimedOut || !r.Cancelled || !r.Killed {
		t.Errorf("running hook: %+v, want killed and cancelled", r)
	}
	if r := res[1]; r.Code != -1 || !errors.Is(r.Err, context.Canceled) {
		t.Errorf("next hook: %+v, want skipped", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "second")); err == nil {
		t.Error("the next hook ran after cancel")
	}
	wantDead(t, "the cancelled hook", pid)
	lb.wantLog(t, "hook cancelled", "name=first")
	lb.wantLog(t, "hook skipped", "name=second")
}

// TestNoGoroutineLeft runs hooks of every kind and checks that the
// goroutine count comes back to where it was.
func TestNoGoroutineLeft(t *testing.T) {
	cfg, _, _ := testConfig(t)
	cfg.Timeout = 300 * time.Millisecond
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pidf := filepath.Join(t.TempDir(), "daemon")
	cfg.Env = append(cfg.Env, "HOOKS_TEST_HELPER=daemon", "HOOKS_TEST_PIDFILE="+pidf, "HOOKS_TEST_BIN="+self)
	baseline := runtime.NumGoroutine()
	runBounded(t, context.Background(), cfg, []Hook{
		sh("ok", "echo hello"),
		sh("fail", "exit 3"),
		{Name: "missing", Path: "/nonexistent"},
		sh("flood", "head -c 1000000 /dev/zero"),
		sh("slow", "sleep 100"),
		sh("daemon", `"$HOOKS_TEST_BIN" & while [ ! -e "$HOOKS_TEST_PIDFILE" ]; do sleep 0.01; done`),
	}, time.Time{}, waitLimit)
	killOnCleanup(t, readPid(t, pidf))
	limit := time.Now().Add(waitLimit)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(limit) {
			t.Fatalf("%d goroutines, %d before Run:\n%s", runtime.NumGoroutine(), baseline, strings.Join(copiers(), "\n\n"))
		}
		time.Sleep(time.Millisecond) // polling a condition, not waiting for one
	}
}

// stuckWriter blocks every Write until release is closed.
type stuckWriter struct{ release chan struct{} }

func (s stuckWriter) Write(p []byte) (int, error) {
	<-s.release
	return len(p), nil
}

// TestOutputStuck: an output writer that blocks does not hold Run up past
// Grace; the copier ends once the writer returns.
func TestOutputStuck(t *testing.T) {
	cfg, lb, _ := testConfig(t)
	w := stuckWriter{make(chan struct{})}
	cfg.Output = w
	res, took := runBounded(t, context.Background(), cfg, []Hook{sh("talker", "echo hi")}, time.Time{}, waitLimit)
	if res[0].Code != 0 {
		t.Errorf("result %+v", res[0])
	}
	if took > Grace+slack {
		t.Errorf("Run took %v with a stuck output", took)
	}
	lb.wantLog(t, "hook output stuck", "name=talker")
	if len(copiers()) == 0 {
		t.Error("no copier blocked in Write: the test proves nothing")
	}
	close(w.release)
	wantNoCopiers(t)
}

// TestExitNeverDelivered: when a killed hook's exit never reaches the
// Reaper that started it (here the Reaper's Run is not running, and the
// test's other Reaper reaps the hook as an orphan), Run still returns
// within Grace of the hook's time.
func TestExitNeverDelivered(t *testing.T) {
	cfg, lb, _ := testConfig(t)
	idle, err := reaper.New(reaper.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// A Run that returns at once releases idle's SIGCHLD subscription.
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); idle.Run(ctx) }()
		cancel()
		<-done
	})
	cfg.Reaper = idle
	cfg.Timeout = 200 * time.Millisecond
	res, took := runBounded(t, context.Background(), cfg, []Hook{sh("orphaned", "sleep 100")}, time.Time{}, waitLimit)
	if r := res[0]; r.Code != -1 || !r.TimedOut || r.Err != nil {
		t.Errorf("result %+v, want timed out and not reaped", r)
	}
	if took > cfg.Timeout+Grace+slack {
		t.Errorf("Run took %v with a timeout of %v", took, cfg.Timeout)
	}
	lb.wantLog(t, "hook not reaped", "name=orphaned")
	wantNoCopiers(t)
}
