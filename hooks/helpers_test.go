package hooks

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spotinit/spotinit/reaper"
)

// waitLimit bounds every wait for a condition; it only matters when a test
// fails.
const waitLimit = 10 * time.Second

// TestMain doubles as a helper program for hooks to start (see daemon).
func TestMain(m *testing.M) {
	if os.Getenv("HOOKS_TEST_HELPER") == "daemon" {
		daemon()
		return
	}
	os.Exit(m.Run())
}

// daemon does what a daemon started by a hook does: it leaves the hook's
// session (and so its process group), says where it is in the file named
// by $HOOKS_TEST_PIDFILE, and keeps writing to the stdout it inherited (the
// hook's output pipe) until a write fails.
func daemon() {
	if _, err := syscall.Setsid(); err != nil {
		os.Exit(2)
	}
	pidfile := os.Getenv("HOOKS_TEST_PIDFILE")
	if err := os.WriteFile(pidfile+".tmp", []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.Exit(2)
	}
	if err := os.Rename(pidfile+".tmp", pidfile); err != nil {
		os.Exit(2)
	}
	for {
		if _, err := os.Stdout.WriteString("tick\n"); err != nil {
			os.Exit(3) // EPIPE: the reader went away, as it should
		}
		time.Sleep(5 * time.Millisecond) // the daemon's own pace
	}
}

// startReaper starts a reaper whose Run lasts until the test ends.
func startReaper(t *testing.T) *reaper.Reaper {
	t.Helper()
	r, err := reaper.New(reaper.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// logBuffer collects log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// line returns the first log line with message msg that contains every one
// of attrs ("key=value"), or "".
func (l *logBuffer) line(msg string, attrs ...string) string {
next:
	for _, ln := range strings.Split(l.String(), "\n") {
		if !strings.Contains(ln, "msg=\""+msg+"\"") {
			continue
		}
		for _, a := range attrs {
			if !strings.Contains(ln, " "+a) {
				continue next
			}
		}
		return ln
	}
	return ""
}

// wantLog fails the test unless a line with msg and attrs was logged.
func (l *logBuffer) wantLog(t *testing.T, msg string, attrs ...string) {
	t.Helper()
	if l.line(msg, attrs...) == "" {
		t.Errorf("no log line %q with %q; log:\n%s", msg, attrs, l.String())
	}
}

// outputRecorder records every Write of hook output, with its time.
type outputRecorder struct {
	mu     sync.Mutex
	writes []string
	times  []time.Time
}

func (o *outputRecorder) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes = append(o.writes, string(p))
	o.times = append(o.times, time.Now())
	return len(p), nil
}

// first returns the time of the first write equal to s.
func (o *outputRecorder) first(s string) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, w := range o.writes {
		if w == s {
			return o.times[i], true
		}
	}
	return time.Time{}, false
}

func (o *outputRecorder) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.writes...)
}

// testConfig returns a Config with a running reaper, a generous timeout
// and a debug log.
func testConfig(t *testing.T) (Config, *logBuffer, *outputRecorder) {
	lb := &logBuffer{}
	out := &outputRecorder{}
	return Config{
		Reaper:  startReaper(t),
		Timeout: time.Minute,
		Env:     []string{"PATH=/usr/bin:/bin"},
		Output:  out,
		Log:     slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, lb, out
}

// runBounded calls Run and fails the test if it has not returned within
// limit. It returns the results and how long Run took.
func runBounded(t *testing.T, ctx context.Context, cfg Config, hooks []Hook, deadline time.Time, limit time.Duration) ([]Result, time.Duration) {
	t.Helper()
	type ret struct {
		res []Result
		d   time.Duration
	}
	done := make(chan ret, 1)
	go func() {
		start := time.Now()
		res := Run(ctx, cfg, hooks, deadline)
		done <- ret{res, time.Since(start)}
	}()
	select {
	case r := <-done:
		if len(r.res) != len(hooks) {
			t.Fatalf("%d results for %d hooks", len(r.res), len(hooks))
		}
		return r.res, r.d
	case <-time.After(limit):
		t.Fatalf("Run has not returned after %v", limit)
		return nil, 0
	}
}

// copiers returns the stacks of goroutines running this package's code.
func copiers() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("spotinit/hooks.copyLines")) || bytes.Contains(g, []byte("spotinit/hooks.(*runner)")) {
			out = append(out, string(g))
		}
	}
	return out
}

// wantNoCopiers fails unless every goroutine of this package has ended
// (each closes its done channel as its last act, so allow it to return).
func wantNoCopiers(t *testing.T) {
	t.Helper()
	waitFor(t, "output copiers to end", func() bool { return len(copiers()) == 0 })
}

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	limit := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(limit) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition, not waiting for one
	}
}

// readPid waits for a file holding a pid (written atomically by the hook)
// and returns the pid.
func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// procStat returns the state and process group of pid from /proc, ok false
// when there is no such process.
func procStat(pid int) (state string, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return "", 0, false
	}
	pgrp, _ = strconv.Atoi(f[2])
	return f[0], pgrp, true
}

// dead says whether pid has ended (gone, or a zombie not yet reaped).
func dead(pid int) bool {
	state, _, ok := procStat(pid)
	return !ok || state == "Z" || state == "X"
}

// wantDead fails unless pid ends within waitLimit (SIGKILL is not
// instantaneous, and the reaper reaps orphans asynchronously).
func wantDead(t *testing.T, what string, pid int) {
	t.Helper()
	waitFor(t, what+" (pid "+strconv.Itoa(pid)+") to be dead", func() bool { return dead(pid) })
}

// killOnCleanup makes sure a process a test created does not outlive it.
func killOnCleanup(t *testing.T, pid int) {
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
}

// sh returns a hook running script with /bin/sh.
func sh(name, script string) Hook {
	return Hook{Name: name, Path: "/bin/sh", Argv: []string{"sh", "-c", script}}
}

// writeFile writes a file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask
		t.Fatal(err)
	}
	return p
}
