package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spotinit/spotinit/simulator"
)

// startSimulator serves a fake IMDS on the host's loopback that announces a
// Spot terminate (two minutes ahead, as EC2 does) the given time after the
// returned function is called: the test calls it when the app says it is
// ready, since a notice signal that came before the app had its handlers
// would kill it, and a loaded machine can take longer than any fixed time to
// start a container. Containers reach it with --network host.
func startSimulator(t *testing.T, after time.Duration) (*simulator.Server, func()) {
	t.Helper()
	var mu sync.Mutex
	begin := time.Now()
	var since time.Time // when the clock was started; zero before
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if since.IsZero() {
			return begin
		}
		return begin.Add(time.Since(since))
	}
	start := func() {
		mu.Lock()
		defer mu.Unlock()
		if since.IsZero() {
			since = time.Now()
		}
	}
	srv, err := simulator.StartClock(context.Background(), "127.0.0.1:0",
		simulator.Scenario{Spot: &simulator.SpotNotice{After: after}}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, start
}

// servedSpotTime asks the simulator, as a client would (IMDSv2 token
// first), for the time in its Spot notice.
func servedSpotTime(t *testing.T, srv *simulator.Server) string {
	t.Helper()
	get := func(method, path string, hdr map[string]string) string {
		req, err := http.NewRequest(method, srv.URL()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %s %v", method, path, resp.StatusCode, b, err)
		}
		return string(b)
	}
	token := get(http.MethodPut, simulator.TokenPath, map[string]string{"X-aws-ec2-metadata-token-ttl-seconds": "60"})
	return strings.TrimSpace(get(http.MethodGet, "/latest/meta-data/spot/termination-time",
		map[string]string{"X-aws-ec2-metadata-token": token}))
}

// noticeEnv points the container's spotinit at the simulator.
func noticeEnv(srv *simulator.Server) []string {
	return []string{
		"-e", "SPOTINIT_IMDS=on",
		"-e", "SPOTINIT_IMDS_ENDPOINT=" + srv.URL(),
		"-e", "SPOTINIT_IMDS_POLL_INTERVAL=250ms",
	}
}

// checkNotice checks what the notice did in both modes: spotinit logged it
// once, the hooks ran with the simulator's time as SPOTINIT_DEADLINE and
// SPOTINIT_NOTICE_TIME, and the app got SIGUSR1 (Dockerfile.example's
// SPOTINIT_NOTICE_SIGNAL) and checkpointed.
func checkNotice(t *testing.T, o output, dir string, srv *simulator.Server) {
	t.Helper()
	n := o.records("interruption notice")
	if len(n) != 1 || n[0].str("kind") != "spot-interruption" || n[0].str("action") != "terminate" {
		t.Fatalf("want one spot-interruption terminate notice:\n%s", o)
	}
	served := servedSpotTime(t, srv)
	c := checkHooksRan(t, o, dir, "spot-interruption", "terminate", appPid(t, o))
	if c.Deadline != served || c.NoticeTime != served {
		t.Errorf("the hooks saw deadline %s, notice time %s; the simulator served %s", c.Deadline, c.NoticeTime, served)
	}
	if len(o.lines("stdout", "interruption notice: checkpoint saved after item")) != 1 {
		t.Errorf("the app did not checkpoint on the notice signal:\n%s", o)
	}
}

// TestDockerNoticeStopOnNotice is plain EC2 with Docker: a Spot notice from
// the IMDS on the host runs the image's pre-stop hooks with the notice's
// values, then (SPOTINIT_STOP_ON_NOTICE=true) spotinit stops the app, which
// wraps up and exits 0 well before the instance's deadline.
func TestDockerNoticeStopOnNotice(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	srv, startNotice := startSimulator(t, 2*time.Second)
	dir, state := stateDir(t, e.b)
	args := append([]string{"-v", usrRO, "--network", "host", "-e", "SPOTINIT_STOP_ON_NOTICE=true"}, state...)
	c := e.run(t, append(append(args, noticeEnv(srv)...), appImage)...)
	c.waitOutput(t, "stdout", "app ready")
	startNotice()

	code := c.wait(t)
	o := c.mustOutput(t)
	if code != 0 {
		t.Fatalf("exit status %d, want 0:\n%s", code, o)
	}
	checkNotice(t, o, dir, srv)
	if len(o.lines("stdout", "; exiting 0")) != 1 {
		t.Errorf("the app did not wrap up:\n%s", o)
	}
	r := stopReport(t, o)
	if r.str("trigger") != "spot-interruption" || r["killed"] != false || r.num("left") <= 0 {
		t.Errorf("stop report %v", r)
	}
	deadline, err := time.Parse(time.RFC3339, servedSpotTime(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	if end := c.state(t).FinishedAt; !end.Before(deadline) {
		t.Errorf("the container ended at %v, after the notice's deadline %v", end, deadline)
	} else {
		t.Logf("stopped %v before the instance's deadline", deadline.Sub(end).Round(time.Second))
	}
}

// TestDockerNoticeDraining is ECS with Spot draining (stop-on-notice off, as
// in Dockerfile.example): the notice runs the hooks and the app keeps
// running; the later docker stop (ECS stopping the task) does not run the
// hooks again, and the app exits 0.
func TestDockerNoticeDraining(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	srv, startNotice := startSimulator(t, time.Second)
	dir, state := stateDir(t, e.b)
	args := append([]string{"-v", usrRO, "--network", "host",
		"-e", fmt.Sprintf("SPOTINIT_STOP_TIMEOUT=%ds", stopSecs)}, state...)
	c := e.run(t, append(append(args, noticeEnv(srv)...), appImage)...)
	c.waitOutput(t, "stdout", "app ready")
	startNotice()

	c.waitOutput(t, "stderr", hookMark("20-flush", "would run"))
	c.waitOutput(t, "stdout", "interruption notice: checkpoint saved")
	if s := c.state(t); !s.Running {
		t.Fatalf("the container stopped on the notice (status %d); ECS mode keeps it:\n%s", s.ExitCode, c.mustOutput(t))
	}
	c.stop(t, stopSecs)
	o := c.mustOutput(t)
	if s := c.state(t); s.ExitCode != 0 {
		t.Fatalf("exit status %d, want 0:\n%s", s.ExitCode, o)
	}
	checkNotice(t, o, dir, srv) // hooks once: checkHooksRan counts their lines
	if len(o.lines("stdout", "; exiting 0")) != 1 {
		t.Errorf("the app did not wrap up:\n%s", o)
	}
}

// TestDockerSimulateNotice is the rehearsal of the deployment notes, in the
// engine: SPOTINIT_SIMULATE_NOTICE serves a Spot notice on the container's
// own loopback (no network needed), and the image's hooks and the stop run
// exactly as they would on EC2.
func TestDockerSimulateNotice(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	dir, state := stateDir(t, e.b)
	args := append([]string{"-v", usrRO, "--network", "none",
		"-e", "SPOTINIT_SIMULATE_NOTICE=1s", "-e", "SPOTINIT_STOP_ON_NOTICE=true"}, state...)
	c := e.run(t, append(args, appImage)...)
	code := c.wait(t)
	o := c.mustOutput(t)
	if code != 0 {
		t.Fatalf("exit status %d, want 0:\n%s", code, o)
	}
	ck := checkHooksRan(t, o, dir, "spot-interruption", "terminate", appPid(t, o))
	deadline, err := time.Parse(time.RFC3339, ck.Deadline)
	if err != nil {
		t.Fatal(err)
	}
	// Two minutes of lead, as EC2 gives (the time has whole seconds).
	if lead := deadline.Sub(c.state(t).StartedAt); lead < 2*time.Minute-time.Second || lead > 2*time.Minute+5*time.Second {
		t.Errorf("simulated deadline %v is %v after the container's start, want about 1s + 2m", deadline, lead)
	}
	if r := stopReport(t, o); r.str("trigger") != "spot-interruption" || r["killed"] != false {
		t.Errorf("stop report %v", r)
	}
}

// TestDockerNoticeAtStart is a container restarted on an instance that is
// already under notice (ECS draining mode, as in Dockerfile.example): the
// notice is in IMDS before the container starts, so spotinit sees it within
// milliseconds, before the Python app has set its SIGUSR1 handler. The
// notice signal waits for the handler instead of killing the app (exit
// 138): the app keeps running, checkpoints on the signal, and ends cleanly
// at the later docker stop.
func TestDockerNoticeAtStart(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	srv, startNotice := startSimulator(t, 0)
	startNotice() // visible from before the container starts
	_, state := stateDir(t, e.b)
	args := append([]string{"-v", usrRO, "--network", "host",
		"-e", fmt.Sprintf("SPOTINIT_STOP_TIMEOUT=%ds", stopSecs)}, state...)
	c := e.run(t, append(append(args, noticeEnv(srv)...), appImage)...)
	c.waitOutput(t, "stdout", "interruption notice: checkpoint saved")
	if s := c.state(t); !s.Running {
		t.Fatalf("the notice signal ended the app (status %d):\n%s", s.ExitCode, c.mustOutput(t))
	}
	c.stop(t, stopSecs)
	o := c.mustOutput(t)
	if s := c.state(t); s.ExitCode != 0 {
		t.Fatalf("exit status %d, want 0:\n%s", s.ExitCode, o)
	}
	if len(o.records("notice signal sent")) != 1 {
		t.Errorf("want one notice signal sent:\n%s", o)
	}
	if held := o.records("notice signal held"); len(held) > 0 {
		t.Logf("the signal was held until the app's handler was set (%d record)", len(held))
	}
}
