package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// usrRO gives the container the host's /usr, read-only: python3, sh, ps.
const usrRO = "/usr:/usr:ro"

// stopSecs is docker stop -t in the stop tests, and SPOTINIT_STOP_TIMEOUT
// with it, as the deployment notes say to set them: equal.
const stopSecs = 5

// stateDir makes a host directory for the hooks' checkpoint, mounted at
// /state with APP_STATE_DIR pointing there.
func stateDir(t *testing.T, b *base) (dir string, args []string) {
	t.Helper()
	dir, err := os.MkdirTemp(b.dir, "state-")
	if err != nil {
		t.Fatal(err)
	}
	return dir, []string{"-v", dir + ":/state", "-e", "APP_STATE_DIR=/state"}
}

// checkpointFile is what examples/python/pre-stop.d/20-flush writes.
type checkpointFile struct {
	Event      string `json:"event"`
	Action     string `json:"action"`
	NoticeTime string `json:"notice_time"`
	Deadline   string `json:"deadline"`
	ChildPID   int    `json:"child_pid"`
}

func readCheckpoint(t *testing.T, dir string) checkpointFile {
	t.Helper()
	var c checkpointFile
	b, err := os.ReadFile(filepath.Join(dir, "checkpoint.json"))
	if err != nil {
		t.Fatalf("the 20-flush hook wrote no checkpoint: %v", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("checkpoint %q: %v", b, err)
	}
	return c
}

// appPid returns the pid that an app printed in its ready line ("app
// ready: pid N...", "worker ready: pid N"), as seen inside the container.
func appPid(t *testing.T, o output) int {
	t.Helper()
	l, ok := o.first("stdout", "ready: pid ")
	if !ok {
		t.Fatalf("no ready line:\n%s", o)
	}
	var pid int
	if _, err := fmt.Sscanf(l.text[strings.Index(l.text, "pid "):], "pid %d", &pid); err != nil {
		t.Fatalf("ready line %q: %v", l.text, err)
	}
	return pid
}

// stopReport returns spotinit's one stop report.
func stopReport(t *testing.T, o output) record {
	t.Helper()
	r := o.records("stop report")
	if len(r) != 1 {
		t.Fatalf("want one stop report, got %d:\n%s", len(r), o)
	}
	return r[0]
}

// checkHooksRan checks that both sample hooks ran once, in order, with the
// event and action given and the child's pid, and returns the checkpoint.
func checkHooksRan(t *testing.T, o output, dir, event, action string, pid int) checkpointFile {
	t.Helper()
	dereg := o.hookLines("10-deregister")
	flush := o.hookLines("20-flush")
	if len(dereg) != 2 || len(flush) != 2 {
		t.Fatalf("want each hook's two lines once, got 10-deregister %q, 20-flush %q:\n%s", dereg, flush, o)
	}
	kv := keyValues(strings.TrimPrefix(dereg[0], "leaving rotation: "))
	if kv["event"] != event || kv["action"] != action || kv["child_pid"] != strconv.Itoa(pid) || kv["deadline"] == "" {
		t.Errorf("10-deregister saw %q, want event=%s action=%s child_pid=%d and a deadline", dereg[0], event, action, pid)
	}
	if !strings.HasPrefix(dereg[1], "would run: aws elbv2 deregister-targets") {
		t.Errorf("10-deregister's placeholder line: %q", dereg[1])
	}
	if !strings.HasPrefix(flush[0], "checkpoint written: /state/checkpoint.json") {
		t.Errorf("20-flush: %q", flush[0])
	}
	if !o.before(t, hookMark("10-deregister", ""), hookMark("20-flush", "")) {
		t.Errorf("20-flush ran before 10-deregister")
	}
	c := readCheckpoint(t, dir)
	if c.Event != event || c.Action != action || c.ChildPID != pid || c.Deadline != kv["deadline"] {
		t.Errorf("checkpoint %+v, want event %s, action %s, child %d, deadline %s", c, event, action, pid, kv["deadline"])
	}
	// "hook finished" is logged only for status 0 ("hook failed",
	// "hook timed out" otherwise).
	if f := o.records("hook finished"); len(f) != 2 {
		t.Errorf("want both hooks finished with status 0, got %d:\n%s", len(f), o)
	}
	return c
}

// stopSampleApp runs image (the Python sample app with its two hooks) with
// a state volume, waits for the app, stops it with docker stop -t stopSecs
// and checks the graceful end: exit 0, the app's wrap-up, and both hooks run
// on the SIGTERM. It returns the container, its output and how long the stop
// took.
func stopSampleApp(t *testing.T, e *engine, image string) (*container, output, time.Duration) {
	t.Helper()
	dir, state := stateDir(t, e.b)
	c := e.run(t, append(append([]string{"-v", usrRO, "--network", "none",
		"-e", fmt.Sprintf("SPOTINIT_STOP_TIMEOUT=%ds", stopSecs)}, state...), image)...)
	c.waitOutput(t, "stdout", "app ready")
	took := c.stop(t, stopSecs)
	o := c.mustOutput(t)
	if s := c.state(t); s.ExitCode != 0 {
		t.Fatalf("exit status %d, want 0:\n%s", s.ExitCode, o)
	}
	if len(o.lines("stdout", "; exiting 0")) != 1 {
		t.Errorf("the app did not wrap up:\n%s", o)
	}
	checkHooksRan(t, o, dir, "stop-signal", "SIGTERM", appPid(t, o))
	return c, o, took
}

// TestDockerStopGraceful: docker stop on the sample app runs the image's
// pre-stop hooks first (Kubernetes preStop order), then the app gets SIGTERM,
// finishes its item, and the container exits 0 long before the engine's
// SIGKILL.
func TestDockerStopGraceful(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	c, o, took := stopSampleApp(t, e, appImage)
	for _, want := range []string{"Received SIGTERM signal", "SIGTERM Signal Received. Let's wrap up.."} {
		if len(o.lines("stdout", want)) != 1 {
			t.Errorf("want the app's %q line once:\n%s", want, o)
		}
	}
	// preStop order, in spotinit's own stream (the engine's timestamps
	// cannot order two streams to the millisecond): the hooks finish, then
	// the app is signalled.
	if !o.before(t, hookMark("20-flush", "would run"), `"msg":"pre-stop hooks done, child signalled"`) {
		t.Errorf("the app was signalled before the hooks were done:\n%s", o)
	}
	r := stopReport(t, o)
	if r.str("trigger") != "SIGTERM" || r.num("code") != 0 || r["killed"] != false || r.num("left") <= 0 {
		t.Errorf("stop report %v", r)
	}
	if f := c.forceLines(t); len(f) > 0 {
		t.Errorf("dockerd had to use force: %q", f)
	}
	t.Logf("docker stop -t %d took %v", stopSecs, took.Round(time.Millisecond))
}

// TestDockerStopDefaultTerm: an app with no SIGTERM handler dies of it as
// spotinit's child (as PID 1 it would have ignored it): 143.
func TestDockerStopDefaultTerm(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	c := e.run(t, "-v", usrRO, "--network", "none", "-e", "SPOTINIT_PRE_STOP_DIR=", "-e", "SPOTINIT_HOOK_TIMEOUT=",
		"-e", fmt.Sprintf("SPOTINIT_STOP_TIMEOUT=%ds", stopSecs), appImage, "python3", "/e2e/default_term.py")
	c.waitOutput(t, "stdout", "app ready")
	took := c.stop(t, stopSecs)
	if s := c.state(t); s.ExitCode != 143 {
		t.Fatalf("exit status %d, want 143:\n%s", s.ExitCode, c.mustOutput(t))
	}
	if took >= stopSecs*time.Second {
		t.Errorf("docker stop took %v: the TERM was not delivered", took)
	}
	if f := c.forceLines(t); len(f) > 0 {
		t.Errorf("dockerd had to use force: %q", f)
	}
}

// TestDockerStopEscalateKill: an app that ignores SIGTERM is killed by
// spotinit itself, stop timeout minus kill margin after the SIGTERM, with
// its log line and status 137, and dockerd never has to use force.
func TestDockerStopEscalateKill(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	margin, err := time.ParseDuration(e.b.config.envValue("SPOTINIT_KILL_MARGIN"))
	if err != nil {
		t.Fatalf("Dockerfile.example's SPOTINIT_KILL_MARGIN: %v", err)
	}
	c := e.run(t, "-v", usrRO, "--network", "none",
		"-e", fmt.Sprintf("SPOTINIT_STOP_TIMEOUT=%ds", stopSecs), appImage, "python3", "/e2e/ignore_term.py")
	c.waitOutput(t, "stdout", "app ready")

	took := c.stop(t, stopSecs)
	s := c.state(t)
	o := c.mustOutput(t)
	if s.ExitCode != 137 {
		t.Fatalf("exit status %d, want 137:\n%s", s.ExitCode, o)
	}
	started := o.records("stop sequence started")
	killed := o.records("deadline reached, sent SIGKILL")
	if len(started) != 1 || len(killed) != 1 {
		t.Fatalf("want one stop sequence and one SIGKILL line:\n%s", o)
	}
	want := stopSecs*time.Second - margin
	// waited is measured, so a timer firing a little late shows; it must
	// still be well before the engine's SIGKILL.
	if waited := killed[0].duration("waited"); waited < want || waited > want+margin/2 {
		t.Errorf("spotinit waited %v before its SIGKILL, want %v (stop timeout %ds - kill margin %v)", waited, want, stopSecs, margin)
	}
	// Measured by the engine: from spotinit's first SIGTERM to the
	// container's end. Before the engine's own timeout, or dockerd would
	// have used force.
	if end := s.FinishedAt.Sub(started[0].time()); end < want || end >= stopSecs*time.Second {
		t.Errorf("the container ended %v after the SIGTERM, want between %v and %ds", end, want, stopSecs)
	}
	if f := c.forceLines(t); len(f) > 0 {
		t.Errorf("dockerd had to use force: %q", f)
	}
	if r := stopReport(t, o); r["killed"] != true || r["killed_child"] != true || r.num("code") != 137 || r["left"] != nil {
		t.Errorf("stop report %v", r)
	}
	t.Logf("docker stop -t %d took %v; spotinit's SIGKILL after %v", stopSecs, took.Round(time.Millisecond), want)
}

// TestDockerStopEngineForceControl is the negative control of
// TestDockerStopEscalateKill: with a stop timeout longer than docker stop's,
// dockerd has to SIGKILL the container itself, and forceLines sees it say so.
func TestDockerStopEngineForceControl(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	c := e.run(t, "-v", usrRO, "--network", "none", "-e", "SPOTINIT_PRE_STOP_DIR=", "-e", "SPOTINIT_HOOK_TIMEOUT=",
		"-e", "SPOTINIT_STOP_TIMEOUT=60s", appImage, "python3", "/e2e/ignore_term.py")
	c.waitOutput(t, "stdout", "app ready")
	c.stop(t, 2)
	o := c.mustOutput(t)
	if s := c.state(t); s.ExitCode != 137 {
		t.Fatalf("exit status %d, want 137:\n%s", s.ExitCode, o)
	}
	if len(o.records("deadline reached, sent SIGKILL")) != 0 {
		t.Errorf("spotinit killed before its 60 s deadline:\n%s", o)
	}
	if f := c.forceLines(t); len(f) != 1 {
		t.Errorf("want dockerd's one \"using the force\" line, got %q; its log:\n%s", f, tail(e.log, 20))
	}
}

// zombies counts the processes in Z state in the container, read by ps from
// the host's procps inside it.
func zombies(t *testing.T, c *container) (int, error) {
	out, err := c.e.docker("exec", c.name, "ps", "-e", "-o", "stat=,pid=,ppid=,comm=")
	if err != nil {
		return 0, err
	}
	n := 0
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "Z") {
			n++
		}
	}
	return n, nil
}

// TestDockerReapOrphans: orphans that exit inside the container are reaped
// by spotinit as PID 1; the same app as PID 1 leaves them as zombies (the
// negative control, which shows that the check can fail).
func TestDockerReapOrphans(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	const n = 20
	t.Run("spotinit", func(t *testing.T) {
		begin(t)
		c := e.run(t, "-v", usrRO, "--network", "none", "-e", "SPOTINIT_LOG_LEVEL=debug", "-e", "SPOTINIT_PRE_STOP_DIR=", "-e", "SPOTINIT_HOOK_TIMEOUT=",
			appImage, "python3", "/e2e/orphans.py", strconv.Itoa(n))
		c.waitOutput(t, "stdout", "orphans exited")
		waitFor(t, readyTimeout, "no zombie in the container", func() (bool, error) {
			z, err := zombies(t, c)
			return err == nil && z == 0, err
		})
		waitFor(t, readyTimeout, fmt.Sprintf("%d \"reaped orphan\" lines", n), func() (bool, error) {
			o, err := c.output()
			return err == nil && len(o.records("reaped orphan")) >= n, err
		})
		c.stop(t, stopSecs)
		if s := c.state(t); s.ExitCode != 0 {
			t.Errorf("exit status %d, want 0:\n%s", s.ExitCode, c.mustOutput(t))
		}
	})
	t.Run("control-python-as-pid1", func(t *testing.T) {
		begin(t)
		c := e.run(t, "-v", usrRO, "--network", "none", "--entrypoint", "python3",
			appImage, "/e2e/orphans.py", strconv.Itoa(n))
		c.waitOutput(t, "stdout", "orphans exited")
		waitFor(t, readyTimeout, fmt.Sprintf("%d zombies under a PID 1 that never waits", n), func() (bool, error) {
			z, err := zombies(t, c)
			return err == nil && z == n, err
		})
	})
}
