// Integration tests against AWS's own amazon-ec2-metadata-mock (AEMM)
// v1.13.0, built by tools/aemm/build.sh (a separate module, so AEMM never
// enters our go.mod) and named by SPOTINIT_AEMM_BIN. Without it they skip,
// unless SPOTINIT_REQUIRE_AEMM=1 (CI) makes that a failure.
//
// What AEMM v1.13.0 does, learned by running it (and reading its source):
//   - Command line: ec2-metadata-mock [spot|events|asglifecycle] [flags].
//     The root command serves every path; a subcommand serves only its own
//     (spot: spot/instance-action, spot/termination-time and
//     events/recommendations/rebalance) and 404 elsewhere. Global flags:
//     -n/--hostname (default 0.0.0.0: always pass 127.0.0.1), -p/--port
//     (default 1338), -I/--imdsv2, -d/--mock-delay-sec,
//     --rebalance-delay-sec, --asg-termination-delay-sec, and -x
//     (--mock-ip-count, default 2: the notice paths answer 404 to a third
//     client IP; we only ever come from 127.0.0.1). It reads an optional
//     $HOME/aemm-config.json (or AEMM_CONFIG_FILE) and AEMM_* variables:
//     none is needed, so the tests run it with HOME set to an empty
//     directory and no other environment but TZ=UTC (see events below).
//     A port in use makes it panic and exit 2. It logs every request, with
//     its token, to stderr.
//   - Tokens: PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds
//     (1..21600, else 400). Without -I a GET needs no token; with -I every
//     GET (listings included) answers 401 without a valid one. The tests
//     use -I, as on EC2 with IMDSv2 required.
//   - Delays count in whole Unix seconds from AEMM's own start: with a
//     delay D it answers 404 until the request's Unix second reaches its
//     start's Unix second plus D, so the notice can come up to 1 s less
//     than D after the start, but never before start.Truncate(time.Second)
//     plus D.
//   - spot -a terminate|stop|hibernate (default terminate) -d D:
//     {"action":"terminate","time":T} (tab-indented JSON) with T =
//     request time + 2 min in RFC 3339, whole seconds: the time moves on
//     every request, one second per second (-t fixes it).
//   - Rebalance (--rebalance-delay-sec R, default 0, so at once):
//     {"noticeTime":T} with T = request time (moving too; spot -r fixes it).
//   - events -o CODE -t STATE -b NOTBEFORE (RFC 3339): one event, EventId
//     instance-event-1234567890abcdef0, dates like "2 Jan 2030 03:04:05 GMT".
//     Defaults: system-reboot, active, NotBefore = AEMM's start. It obeys
//     -d too (404 until then). Bug: it prints the parsed time's own clock
//     followed by "GMT", so with TZ other than UTC the default NotBefore
//     is off by the zone's offset (TZ=Asia/Tokyo: 9 h in the future), as
//     is a -b given with an offset.
//   - asglifecycle --asg-termination-delay-sec A (available in v1.13.0):
//     autoscaling/target-lifecycle-state answers "InService" until the
//     delay has passed, then "Terminated" (default 0: at once, also in the
//     root command). (--asg-termination-trigger-time is declared as an
//     integer flag and cannot take the RFC 3339 time its help promises.)
//   - Its token and client-IP tables are maps without locks: concurrent
//     requests that create a token could crash it, so the tests' own
//     requests never overlap the watcher's token request.

package interruption

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// aemmBinEnv names the AEMM binary; aemmRequireEnv=1 makes its absence
	// a failure instead of a skip.
	aemmBinEnv     = "SPOTINIT_AEMM_BIN"
	aemmRequireEnv = "SPOTINIT_REQUIRE_AEMM"

	// aemmPoll is the period of every path's polls against AEMM.
	aemmPoll = 50 * time.Millisecond
	// aemmQuietPolls: after a notice, this many further polls of its path
	// (each answered with the notice again, at a new time) must give no
	// other notice.
	aemmQuietPolls = 5
	// aemmEventID is the EventId AEMM gives its one scheduled event.
	aemmEventID = "instance-event-1234567890abcdef0"
)

// aemmProcess is one running AEMM.
type aemmProcess struct {
	url    string
	start  time.Time // just before AEMM was started: its delays count from its start, in whole seconds
	client *http.Client
	token  string // for the test's own requests, fetched before the watcher runs
}

// aemmBinary returns the AEMM binary to run, or skips (fails, when
// SPOTINIT_REQUIRE_AEMM=1) the test when there is none.
func aemmBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(aemmBinEnv)
	if bin != "" {
		return bin
	}
	const how = "build it with tools/aemm/build.sh DIR and set " + aemmBinEnv + "=DIR/ec2-metadata-mock"
	if os.Getenv(aemmRequireEnv) == "1" {
		t.Fatalf("%s is not set but %s=1 requires the AEMM tests: %s", aemmBinEnv, aemmRequireEnv, how)
	}
	t.Skipf("AEMM integration test skipped: %s is not set (%s)", aemmBinEnv, how)
	return ""
}

// startAEMM runs AEMM with args (a subcommand and its flags) on a free
// 127.0.0.1 port, IMDSv2 only, and waits until it answers. It is killed
// when the test ends; its log is shown if the test failed.
func startAEMM(t *testing.T, args ...string) *aemmProcess {
	t.Helper()
	bin := aemmBinary(t)
	const attempts = 3 // the free port can be taken before AEMM binds it
	for i := 1; ; i++ {
		a, retry := tryAEMM(t, bin, args)
		if a != nil {
			return a
		}
		if !retry || i == attempts {
			t.Fatalf("AEMM did not start (attempt %d)", i)
		}
	}
}

// tryAEMM makes one attempt of startAEMM. It returns nil and whether to
// try again when AEMM exited during start-up.
func tryAEMM(t *testing.T, bin string, args []string) (*aemmProcess, bool) {
	t.Helper()
	port := freePort(t)
	home := t.TempDir()
	argv := append([]string{"--hostname", "127.0.0.1", "--port", port, "--imdsv2"}, args...)
	// exec.Cmd rather than the reaper: AEMM is a plain child of the test
	// process and nothing else here waits for children.
	cmd := exec.Command(bin, argv...)
	cmd.Dir = home
	// No AEMM_* variables and no config file; TZ=UTC because AEMM formats
	// scheduled-event dates in local time but labels them GMT.
	cmd.Env = []string{"HOME=" + home, "TZ=UTC"}
	out := &aemmLog{}
	cmd.Stdout, cmd.Stderr = out, out
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start AEMM: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill() // fails only when it has exited already
		<-exited
	}

	a := &aemmProcess{
		url:    "http://127.0.0.1:" + port,
		start:  started,
		client: &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}},
	}
	// Ready when it hands out a token and lists its categories under
	// /latest with it: a port that answers could be another test's server
	// that took the port first. The token serves the test's own requests.
	limit := time.NewTimer(10 * time.Second)
	defer limit.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if a.ready() {
			break
		}
		select {
		case <-exited:
			a.client.CloseIdleConnections()
			t.Logf("AEMM %v exited during start-up: %v; its output:\n%s", argv, waitErr, out.String())
			return nil, strings.Contains(out.String(), "address already in use")
		case <-limit.C:
			stop()
			a.client.CloseIdleConnections()
			t.Fatalf("AEMM %v not answering after 10s; its output:\n%s", argv, out.String())
		case <-tick.C:
		}
	}
	t.Cleanup(func() {
		stop()
		a.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("AEMM %v output (tail):\n%s", argv, out.String())
		}
	})
	return a, false
}

// ready reports whether AEMM answers a token PUT and, with that token,
// lists its categories under /latest. It keeps the token.
func (a *aemmProcess) ready() bool {
	status, tok := a.do("PUT", "/latest/api/token", map[string]string{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": "21600"})
	if status != http.StatusOK || tok == "" {
		return false
	}
	status, body := a.do("GET", "/latest", map[string]string{"X-Aws-Ec2-Metadata-Token": tok})
	if status != http.StatusOK || !strings.Contains(body, "meta-data") {
		return false
	}
	a.token = tok
	return true
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// do sends one request to AEMM and returns its status and body; status 0
// when there was no answer.
func (a *aemmProcess) do(method, path string, header map[string]string) (int, string) {
	req, err := http.NewRequest(method, a.url+path, nil)
	if err != nil {
		return 0, err.Error()
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, string(body)
}

// get fetches a metadata path with the test's own token.
func (a *aemmProcess) get(path string) (int, string) {
	return a.do("GET", "/latest/meta-data/"+path, map[string]string{"X-Aws-Ec2-Metadata-Token": a.token})
}

// awaitAnswer polls path itself until ok accepts AEMM's answer; the limit
// only bounds failure.
func (a *aemmProcess) awaitAnswer(t *testing.T, path, what string, ok func(status int, body string) bool) {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		status, body := a.get(path)
		if ok(status, body) {
			return
		}
		select {
		case <-limit.C:
			t.Fatalf("AEMM never answered %s with %s; last: %d %q", path, what, status, body)
		case <-tick.C:
		}
	}
}

// aemmLog keeps what AEMM writes: the start (its flags) and the latest
// lines, for a failing test to show.
type aemmLog struct {
	mu         sync.Mutex
	head, tail []byte
}

const (
	aemmLogHead = 2 << 10
	aemmLogTail = 64 << 10
	aemmLogShow = 40 // lines of the tail shown
)

func (l *aemmLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rest := p
	if n := min(aemmLogHead-len(l.head), len(rest)); n > 0 {
		l.head = append(l.head, rest[:n]...)
		rest = rest[n:]
	}
	l.tail = append(l.tail, rest...)
	if len(l.tail) > 2*aemmLogTail {
		l.tail = append([]byte(nil), l.tail[len(l.tail)-aemmLogTail:]...)
	}
	return len(p), nil
}

// String returns the start and the last lines of the log, without AEMM's
// per-request chatter (which also shows every token).
func (l *aemmLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lines []string
	for line := range strings.Lines(string(l.head) + string(l.tail)) {
		if strings.Contains(line, "Received request: &{") || strings.Contains(line, "Token validated!") ||
			strings.Contains(line, "mock response successfully.") {
			continue
		}
		lines = append(lines, line)
	}
	if len(lines) > aemmLogShow+12 {
		lines = append(append(lines[:12:12], "...\n"), lines[len(lines)-aemmLogShow:]...)
	}
	return strings.Join(lines, "")
}

// aemmConfig watches a in On mode, polling every path every aemmPoll.
func aemmConfig(a *aemmProcess, lr *logRecorder, kinds ...Kind) Config {
	return Config{
		Mode:              On,
		Endpoint:          a.url,
		Kinds:             kinds,
		PollInterval:      aemmPoll,
		Getenv:            noEnv,
		Log:               lr.logger(),
		slowInterval:      aemmPoll,
		scheduledInterval: aemmPoll,
		spotGap:           time.Second + 4*aemmPoll, // spot backoff capped as the others'
		maxBackoff:        4 * aemmPoll,
	}
}

// polls counts the polls of path the watcher has logged; found, when not
// "", keeps only those with that outcome ("true": IMDS had a body).
func polls(lr *logRecorder, path, found string) int {
	n := 0
	for _, r := range lr.find(slog.LevelDebug, "imds poll") {
		if r.attrs["path"] == path && (found == "" || r.attrs["found"] == found) {
			n++
		}
	}
	return n
}

// awaitPolls waits until the watcher has logged n more polls of path than
// it had when called.
func awaitPolls(t *testing.T, lr *logRecorder, path string, n int) {
	t.Helper()
	want := polls(lr, path, "") + n
	lr.waitFor(t, fmt.Sprintf("%d more polls of %s", n, path), func() bool { return polls(lr, path, "") >= want })
}

// quiet checks that aemmQuietPolls more polls of each path give no notice.
// A poll's notice is sent before the next poll is logged, so it waits for
// one poll more.
func quiet(t *testing.T, ch <-chan Notice, lr *logRecorder, paths ...string) {
	t.Helper()
	for _, p := range paths {
		awaitPolls(t, lr, p, aemmQuietPolls+1)
	}
	none(t, ch)
}

// noWarnings checks that talking to AEMM (tokens included) raised no
// warning.
func noWarnings(t *testing.T, lr *logRecorder) {
	t.Helper()
	if w := lr.atLeast(slog.LevelWarn); len(w) > 0 {
		t.Errorf("unexpected warnings against AEMM:\n%s", lr.text())
	}
}

// seconds formats d for AEMM's delay flags.
func seconds(d time.Duration) string { return fmt.Sprint(int64(d / time.Second)) }

// notBefore fails the test if a notice was received before the time a
// delay of d seconds lets AEMM serve it.
func notBefore(t *testing.T, a *aemmProcess, got time.Time, d time.Duration) {
	t.Helper()
	earliest := a.start.Truncate(time.Second).Add(d)
	if got.Before(earliest) {
		t.Errorf("notice received %v after AEMM's start, before its delay of %v allows (%v)", got.Sub(a.start), d, earliest)
	}
	if late := got.Sub(a.start); late > d+5*time.Second {
		t.Errorf("notice received %v after AEMM's start, long after its delay of %v", late, d)
	}
}

// TestAEMMSpotAfterDelay: AEMM holds the Spot notice back for its delay
// (404: nothing yet), then serves it with a new time on every request; the
// watcher delivers one terminate notice, not before the delay, and never
// another for the moving time.
func TestAEMMSpotAfterDelay(t *testing.T) {
	t.Parallel()
	const delay = 3 * time.Second
	a := startAEMM(t, "spot", "--mock-delay-sec", seconds(delay))
	lr := newRecorder(t)
	ch := start(t, aemmConfig(a, lr, Spot))

	n := recv(t, ch)
	got := time.Now()
	notBefore(t, a, got, delay)
	if polls(lr, pathSpot, "false") == 0 {
		t.Errorf("no 404 poll before the notice: the delay was not observed")
	}
	if n.Kind != Spot || n.Action != "terminate" || n.ID != "spot/terminate" || n.Update || !n.Deadline.Equal(n.Time) {
		t.Errorf("notice = %+v, want a terminate Spot notice with Deadline = Time", n)
	}
	// AEMM's time is request time + 2 min, whole seconds.
	if lo, hi := n.Seen.Add(2*time.Minute-time.Second), got.Add(2*time.Minute); n.Time.Before(lo) || n.Time.After(hi) {
		t.Errorf("notice time %v not 2 minutes after the poll (%v..%v)", n.Time, lo, hi)
	}
	if n.Seen.After(got) || n.Seen.Before(a.start) {
		t.Errorf("Seen = %v, not between AEMM's start %v and receipt %v", n.Seen, a.start, got)
	}

	// Wait until AEMM's answer carries another time, then watch more polls.
	a.awaitAnswer(t, pathSpot, "a later time", func(status int, body string) bool {
		sn, err := parseSpot([]byte(body))
		return status == http.StatusOK && err == nil && sn.Time.After(n.Time)
	})
	quiet(t, ch, lr, pathSpot)
	if got := lr.find(slog.LevelInfo, "interruption notice"); len(got) != 1 {
		t.Errorf("%d notice log lines, want 1:\n%s", len(got), lr.text())
	}
	noWarnings(t, lr)
}

// TestAEMMSpotActions: stop and hibernate notices keep their action.
func TestAEMMSpotActions(t *testing.T) {
	t.Parallel()
	for _, action := range []string{"stop", "hibernate"} {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			a := startAEMM(t, "spot", "--action", action)
			lr := newRecorder(t)
			ch := start(t, aemmConfig(a, lr, Spot))
			if n := recv(t, ch); n.Kind != Spot || n.Action != action || n.ID != "spot/"+action {
				t.Errorf("notice = %+v, want Spot %s", n, action)
			}
			quiet(t, ch, lr, pathSpot)
			noWarnings(t, lr)
		})
	}
}

// TestAEMMRebalance: one Rebalance notice after its delay, with AEMM's
// noticeTime and no deadline, though noticeTime moves on every poll.
func TestAEMMRebalance(t *testing.T) {
	t.Parallel()
	const delay = 2 * time.Second
	a := startAEMM(t, "spot", "--rebalance-delay-sec", seconds(delay))
	lr := newRecorder(t)
	ch := start(t, aemmConfig(a, lr, Rebalance))

	n := recv(t, ch)
	got := time.Now()
	notBefore(t, a, got, delay)
	if polls(lr, pathRebalance, "false") == 0 {
		t.Errorf("no 404 poll before the notice: the delay was not observed")
	}
	if n.Kind != Rebalance || n.Action != "rebalance" || n.ID != "rebalance" || n.Update || !n.Deadline.IsZero() {
		t.Errorf("notice = %+v, want a Rebalance notice without deadline", n)
	}
	if lo := n.Seen.Add(-time.Second); n.Time.Before(lo) || n.Time.After(got) {
		t.Errorf("noticeTime %v, want the poll's time (%v..%v)", n.Time, lo, got)
	}

	a.awaitAnswer(t, pathRebalance, "a later noticeTime", func(status int, body string) bool {
		tm, err := parseRebalance([]byte(body))
		return status == http.StatusOK && err == nil && tm.After(n.Time)
	})
	quiet(t, ch, lr, pathRebalance)
	noWarnings(t, lr)
}

// TestAEMMScheduled runs AEMM's one scheduled event under different codes,
// states, NotBefore times and leads. A notice comes only at NotBefore -
// ScheduledLead, never at once just because the event is listed.
func TestAEMMScheduled(t *testing.T) {
	t.Parallel()

	t.Run("default event, reboot not acted on", func(t *testing.T) {
		t.Parallel()
		// AEMM's default: system-reboot, active, NotBefore = its start.
		a := startAEMM(t, "events")
		lr := newRecorder(t)
		ch := start(t, aemmConfig(a, lr, Scheduled))
		quiet(t, ch, lr, pathScheduled)
		ignored := lr.find(slog.LevelInfo, "imds notice ignored")
		if len(ignored) != 1 || ignored[0].attrs["action"] != "system-reboot" || ignored[0].attrs["id"] != aemmEventID {
			t.Errorf("ignored lines = %v, want one for AEMM's system-reboot", ignored)
		}
		noWarnings(t, lr)
	})

	t.Run("default event, reboot acted on", func(t *testing.T) {
		t.Parallel()
		a := startAEMM(t, "events")
		lr := newRecorder(t)
		cfg := aemmConfig(a, lr, Scheduled)
		cfg.ScheduledReboot = true
		cfg.ScheduledLead = time.Minute
		ch := start(t, cfg)
		// NotBefore is AEMM's start, already past: due at once.
		n := recv(t, ch)
		if n.Kind != Scheduled || n.Action != "system-reboot" || n.ID != aemmEventID || n.Update {
			t.Errorf("notice = %+v, want AEMM's system-reboot event", n)
		}
		if lo, hi := a.start.Truncate(time.Second), n.Seen; n.Deadline.Before(lo) || n.Deadline.After(hi) || !n.Time.Equal(n.Deadline) {
			t.Errorf("deadline %v (time %v), want NotBefore = AEMM's start (%v..%v)", n.Deadline, n.Time, lo, hi)
		}
		quiet(t, ch, lr, pathScheduled)
		noWarnings(t, lr)
	})

	t.Run("due after the lead", func(t *testing.T) {
		t.Parallel()
		const lead = time.Hour
		// Whole seconds, as AEMM gives them; due 3-4 s from now, well
		// after AEMM is up and the watcher has seen the event.
		nb := time.Now().Truncate(time.Second).Add(lead + 4*time.Second).UTC()
		actAt := nb.Add(-lead)
		a := startAEMM(t, "events", "--code", "instance-stop", "--not-before", nb.Format(time.RFC3339))
		lr := newRecorder(t)
		cfg := aemmConfig(a, lr, Scheduled)
		cfg.ScheduledLead = lead
		ch := start(t, cfg)

		seen := lr.await(t, slog.LevelInfo, "scheduled event seen", 1)
		if seen[0].attrs["id"] != aemmEventID || seen[0].attrs["action"] != "instance-stop" {
			t.Errorf("seen line = %s", seen[0].text)
		}
		n := recv(t, ch)
		if got := time.Now(); got.Before(actAt) {
			t.Errorf("delivered %v before NotBefore - lead (%v)", actAt.Sub(got), actAt)
		} else if got.Sub(actAt) > 5*time.Second {
			t.Errorf("delivered %v after NotBefore - lead", got.Sub(actAt))
		}
		if n.Kind != Scheduled || n.Action != "instance-stop" || n.ID != aemmEventID || !n.Deadline.Equal(nb) || !n.Time.Equal(nb) || n.Update {
			t.Errorf("notice = %+v, want instance-stop with deadline %v", n, nb)
		}
		if !n.Seen.Before(actAt) {
			t.Errorf("Seen = %v, want the first sight, before %v", n.Seen, actAt)
		}
		quiet(t, ch, lr, pathScheduled)
		noWarnings(t, lr)
	})

	t.Run("not due", func(t *testing.T) {
		t.Parallel()
		nb := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
		a := startAEMM(t, "events", "--code", "instance-retirement", "--not-before", nb.Format(time.RFC3339))
		lr := newRecorder(t)
		cfg := aemmConfig(a, lr, Scheduled)
		cfg.ScheduledLead = 30 * time.Minute
		ch := start(t, cfg)
		seen := lr.await(t, slog.LevelInfo, "scheduled event seen", 1)
		if want := nb.Add(-30 * time.Minute).String(); seen[0].attrs["act_at"] != want {
			t.Errorf("seen line = %s, want act_at %s", seen[0].text, want)
		}
		quiet(t, ch, lr, pathScheduled)
		noWarnings(t, lr)
	})

	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		a := startAEMM(t, "events", "--code", "instance-stop", "--state", "canceled")
		lr := newRecorder(t)
		ch := start(t, aemmConfig(a, lr, Scheduled))
		quiet(t, ch, lr, pathScheduled)
		if got := lr.find(slog.LevelInfo, "scheduled event seen"); len(got) > 0 {
			t.Errorf("canceled event taken up: %v", got)
		}
		noWarnings(t, lr)
	})
}

// TestAEMMASG: autoscaling/target-lifecycle-state says InService until
// AEMM's delay has passed, then Terminated: one ASG notice, with the
// default lead as its deadline.
func TestAEMMASG(t *testing.T) {
	t.Parallel()
	const delay = 2 * time.Second
	a := startAEMM(t, "asglifecycle", "--asg-termination-delay-sec", seconds(delay))
	lr := newRecorder(t)
	cfg := aemmConfig(a, lr, ASG)
	cfg.DefaultLead = 90 * time.Second
	ch := start(t, cfg)

	n := recv(t, ch)
	got := time.Now()
	notBefore(t, a, got, delay)
	states := lr.find(slog.LevelDebug, "asg lifecycle state")
	if len(states) == 0 || states[0].attrs["state"] != "InService" {
		t.Errorf("states before the notice = %v, want InService", states)
	}
	if n.Kind != ASG || n.Action != "terminate" || n.ID != "asg-terminate" || !n.Time.IsZero() || !n.Deadline.Equal(n.Seen.Add(90*time.Second)) || n.Update {
		t.Errorf("notice = %+v, want an ASG terminate notice due 90s after Seen", n)
	}
	quiet(t, ch, lr, pathASG)
	noWarnings(t, lr)
}

// TestAEMMAllKinds runs AEMM's root command, which serves every path, as a
// user enabling every kind would meet it: rebalance after 1 s, the ASG
// state after 2 s, the Spot notice and the (default, reboot) scheduled
// event after 3 s. Each comes once.
func TestAEMMAllKinds(t *testing.T) {
	t.Parallel()
	a := startAEMM(t, "--mock-delay-sec", "3", "--rebalance-delay-sec", "1", "--asg-termination-delay-sec", "2")
	lr := newRecorder(t)
	cfg := aemmConfig(a, lr, Spot, ASG, Rebalance, Scheduled)
	cfg.ScheduledReboot = true
	ch := start(t, cfg)

	delays := map[Kind]time.Duration{Rebalance: time.Second, ASG: 2 * time.Second, Spot: 3 * time.Second, Scheduled: 3 * time.Second}
	var got []Notice
	for len(got) < len(delays) {
		n := recv(t, ch)
		got = append(got, n)
		d, ok := delays[n.Kind]
		if !ok || slices.ContainsFunc(got[:len(got)-1], func(o Notice) bool { return o.Kind == n.Kind }) {
			t.Fatalf("unexpected notice %+v after %+v; log:\n%s", n, got[:len(got)-1], lr.text())
		}
		notBefore(t, a, time.Now(), d)
		if n.Update {
			t.Errorf("notice %+v is an Update", n)
		}
	}
	quiet(t, ch, lr, pathSpot, pathASG, pathRebalance, pathScheduled)
	if got := lr.find(slog.LevelInfo, "interruption notice"); len(got) != 4 {
		t.Errorf("%d notice log lines, want 4:\n%s", len(got), lr.text())
	}
	noWarnings(t, lr)
}

// TestAEMMTokenRequired is a negative control for the tests above: AEMM
// started with --imdsv2 refuses a notice request without a token, so the
// watcher's success against it shows that it sends one.
func TestAEMMTokenRequired(t *testing.T) {
	t.Parallel()
	a := startAEMM(t, "spot")
	if status, _ := a.do("GET", "/latest/meta-data/"+pathSpot, nil); status != http.StatusUnauthorized {
		t.Errorf("GET without a token = %d, want 401", status)
	}
	if status, body := a.get(pathSpot); status != http.StatusOK {
		t.Errorf("GET with a token = %d %q, want 200", status, body)
	}
}
