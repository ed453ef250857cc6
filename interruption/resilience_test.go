package interruption

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// The tests here run the watcher with its default schedule (2s polls,
// 1s request bound, 10s spot gap, 1 minute between warnings of a class)
// inside a synctest bubble against the in-process fake: the clock is fake,
// so minutes of backoff take no real time, and the times the fake records
// are exact. In a bubble, time.Sleep advances that clock: it is how the
// tests let the watcher run for a stretch of fake time, not a wait for
// state.

// gaps returns the time between consecutive entries of ts.
func gaps(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}

// delayBounds is the range backoff draws from after the n-th consecutive
// failure of a path with this interval and cap (see watcher.backoff).
func delayBounds(interval, limit time.Duration, n int) (lo, hi time.Duration) {
	step := interval
	for i := 1; i < n && step < limit; i++ {
		step *= 2
	}
	if step >= limit {
		return limit - limit/5, limit
	}
	return step - step/10, min(step+step/10, limit)
}

// TestBackoff checks the schedule after failures against its bounds, for
// many draws: the spot path doubles from its interval to 10s less the
// request bound, the other paths from theirs to 30s, never below their own
// interval; the jitter really spreads the delays.
func TestBackoff(t *testing.T) {
	w := &watcher{pollInterval: 2 * time.Second, requestTimeout: time.Second, spotGap: 10 * time.Second, maxBackoff: 30 * time.Second}
	spot := &poller{kind: Spot, interval: 2 * time.Second}
	w.spot = spot
	for _, tc := range []struct {
		name  string
		p     *poller
		steps []time.Duration // backoffStep after 1, 2, ... failures
		limit time.Duration
	}{
		{"spot", spot, []time.Duration{2, 4, 8, 9, 9, 9, 9, 9}, 9 * time.Second},
		{"asg", &poller{kind: ASG, interval: 5 * time.Second}, []time.Duration{5, 10, 20, 30, 30, 30}, 30 * time.Second},
		{"scheduled", &poller{kind: Scheduled, interval: 30 * time.Second}, []time.Duration{30, 30, 30}, 30 * time.Second},
	} {
		for i, want := range tc.steps {
			tc.p.failures = i + 1
			if got := w.backoffStep(tc.p); got != want*time.Second {
				t.Errorf("%s: step after %d failures = %v, want %v", tc.name, i+1, got, want*time.Second)
			}
			lo, hi := delayBounds(tc.p.interval, tc.limit, i+1)
			least, most := hi, lo
			for range 2000 {
				d := w.backoff(tc.p)
				if d < lo || d > hi {
					t.Fatalf("%s: delay after %d failures = %v, outside [%v, %v]", tc.name, i+1, d, lo, hi)
				}
				least, most = min(least, d), max(most, d)
			}
			if most-least < (hi-lo)/2 {
				t.Errorf("%s: 2000 delays after %d failures all within [%v, %v] of [%v, %v]: no jitter", tc.name, i+1, least, most, lo, hi)
			}
		}
	}

	// A spot interval longer than the cap: failures never shorten it.
	w.pollInterval, spot.interval, spot.failures = 15*time.Second, 15*time.Second, 3
	if got := w.backoffStep(spot); got != 15*time.Second {
		t.Errorf("step of a 15s spot path = %v, want 15s", got)
	}
	// A shorter request bound leaves a longer pause: it is the time
	// between two reads' starts that is bounded.
	w.pollInterval, spot.interval, spot.failures, w.requestTimeout = 2*time.Second, 2*time.Second, 9, 200*time.Millisecond
	if got := w.backoffStep(spot); got != 9800*time.Millisecond {
		t.Errorf("spot cap with a 200ms request bound = %v, want 9.8s", got)
	}
	for range 1000 {
		if d := jitter(2 * time.Second); d < 1800*time.Millisecond || d > 2200*time.Millisecond {
			t.Fatalf("jitter(2s) = %v, outside ±10%%", d)
		}
	}
}

// TestUnauthorizedRetriedInPoll: a 401 (the token expired under the
// watcher) gets a new token and the GET again at once, within the same
// poll: no failure, no warning, no backoff, and the poll's answer is used.
func TestUnauthorizedRetriedInPoll(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newLocalFake(t)
		lr := newRecorder(t)
		deadline := time.Now().Add(2 * time.Minute).UTC().Truncate(time.Second)
		f.set(pathSpot, static(200, spotBody("terminate", deadline)))
		f.update(func(f *fakeIMDS) { f.expireGets = 1 })
		cfg := defaultConfig(f, lr, Spot)
		cfg.PollInterval = time.Hour // one poll: every request below is part of it
		began := time.Now()
		n := recv(t, start(t, cfg))
		if !n.Deadline.Equal(deadline) {
			t.Errorf("notice = %+v", n)
		}
		want := []string{"PUT token 200", "GET spot/instance-action 401", "PUT token 200", "GET spot/instance-action 200"}
		if got := f.requests(); !slices.Equal(got, want) {
			t.Errorf("requests = %q, want %q", got, want)
		}
		f.read(func(f *fakeIMDS) {
			for _, r := range f.log {
				if !r.at.Equal(began) {
					t.Errorf("%v came %v after the poll began; the retry must not wait", r, r.at.Sub(began))
				}
			}
		})
		if got := lr.find(slog.LevelDebug, "imds poll failed"); len(got) != 0 {
			t.Errorf("a renewed token counted as a failed poll: %v", got)
		}
		if w := lr.atLeast(slog.LevelWarn); len(w) != 0 {
			t.Errorf("unexpected warnings: %v", w)
		}
	})
}

// TestUnauthorizedPersistent: a 401 that a new token does not cure fails
// the poll (one retry per poll, never a loop), warns once as
// unauthorized, and backs off.
func TestUnauthorizedPersistent(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newLocalFake(t)
		lr := newRecorder(t)
		f.set(pathSpot, static(http.StatusUnauthorized, ""))
		start(t, defaultConfig(f, lr, Spot))
		time.Sleep(30 * time.Second)
		reqs := f.requests()
		polls := len(lr.find(slog.LevelDebug, "imds poll failed"))
		if polls < 3 {
			t.Fatalf("%d failed polls in 30s; requests %q", polls, reqs)
		}
		// Each poll: a token (the last 401 dropped the one before), GET
		// 401, a new token, GET 401.
		f.read(func(f *fakeIMDS) {
			if f.gets[pathSpot] != 2*polls || f.puts != 2*polls {
				t.Errorf("%d failed polls made %d GETs and %d token PUTs, want %d of each: %q",
					polls, f.gets[pathSpot], f.puts, 2*polls, reqs)
			}
		})
		w := lr.find(slog.LevelWarn, "imds request failed")
		if len(w) != 1 || w[0].attrs["class"] != failUnauthorized || w[0].attrs["error"] != "unauthorized: http 401" {
			t.Errorf("warnings = %v, want one unauthorized (http 401)", w)
		}
		if strings.Contains(lr.text(), tokenSecret) {
			t.Errorf("token in the logs:\n%s", lr.text())
		}
	})
}

// TestBackoffSchedule: a run of 503s backs the spot reads off from the
// poll interval, doubling, to at most 10s between two reads; the first
// normal answer brings back the interval. The episode is one warning and
// one line when it ends, saying how long it lasted and how many polls
// failed.
func TestBackoffSchedule(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newLocalFake(t)
		lr := newRecorder(t)
		const first, failing = 4, 12 // GETs 4 to 15 answer 503
		f.set(pathSpot, func(n int) (int, string) {
			if n >= first && n < first+failing {
				return http.StatusServiceUnavailable, "busy"
			}
			return http.StatusNotFound, ""
		})
		start(t, defaultConfig(f, lr, Spot))
		time.Sleep(3 * time.Minute)

		times := f.getTimes(pathSpot)
		gs := gaps(times)
		if len(gs) < first+failing+10 {
			t.Fatalf("only %d spot reads in 3 minutes: %v", len(times), gs)
		}
		// gs[i] is the pause after read i+1 (from 1).
		for i, g := range gs {
			read := i + 1
			lo, hi := 1800*time.Millisecond, 2200*time.Millisecond // the interval
			what := "normal"
			if read >= first && read < first+failing {
				what = fmt.Sprintf("after failure %d", read-first+1)
				lo, hi = delayBounds(2*time.Second, 9*time.Second, read-first+1)
			}
			if g < lo || g > hi {
				t.Errorf("pause %s (read %d) = %v, want %v to %v; all: %v", what, read, g, lo, hi, gs)
			}
			if g > 10*time.Second {
				t.Errorf("%v between two spot reads", g)
			}
		}

		warns := lr.atLeast(slog.LevelWarn)
		if len(warns) != 1 || warns[0].msg != "imds request failed" || warns[0].attrs["class"] != failServer ||
			warns[0].attrs["error"] != "server-error: http 503" || warns[0].attrs["path"] != pathSpot {
			t.Errorf("warnings = %v, want one server-error (http 503)", warns)
		}
		back := lr.find(slog.LevelInfo, "imds answering again")
		want := times[first+failing-1].Sub(times[first-1]) // first failed read to first good one
		if len(back) != 1 || back[0].attrs["failed_polls"] != fmt.Sprint(failing) || back[0].attrs["fault_duration"] != want.String() {
			t.Errorf("end of fault = %v, want one with failed_polls=%d fault_duration=%v", back, failing, want)
		}
		if n := len(lr.atLeast(slog.LevelInfo)); n != 3 {
			t.Errorf("%d lines at info or above, want 3 (started, the warning, answering again):\n%s", n, lr.text())
		}
		// 503s are not retried within a poll: one GET each.
		if got := len(lr.find(slog.LevelDebug, "imds poll failed")); got != failing {
			t.Errorf("%d failed polls for %d failing answers", got, failing)
		}
	})
}

// TestFaultEpisodes: each class of failure is warned about once per
// episode (a 429 run turning into 503s is two warnings and one end);
// an episode that starts again within a minute of the last warning of its
// class is logged at debug only, its end too; the next one after that
// minute warns again and says how many went unlogged.
func TestFaultEpisodes(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newLocalFake(t)
		lr := newRecorder(t)
		f.set(pathSpot, func(n int) (int, string) {
			switch {
			case n >= 3 && n <= 5:
				return http.StatusTooManyRequests, ""
			case n >= 6 && n <= 7, n == 9, n == 41:
				return http.StatusInternalServerError, ""
			}
			return http.StatusNotFound, ""
		})
		start(t, defaultConfig(f, lr, Spot))
		time.Sleep(3 * time.Minute)
		if n := len(f.getTimes(pathSpot)); n < 45 {
			t.Fatalf("only %d spot reads", n)
		}

		var got []string
		for _, r := range lr.atLeast(slog.LevelDebug) {
			switch r.msg {
			case "imds request failed":
				got = append(got, fmt.Sprintf("%v %s %s unlogged=%s", r.level, r.msg, r.attrs["class"], r.attrs["unlogged_episodes"]))
			case "imds answering again":
				got = append(got, fmt.Sprintf("%v %s failed=%s", r.level, r.msg, r.attrs["failed_polls"]))
			}
		}
		want := []string{
			"WARN imds request failed throttled unlogged=",
			"WARN imds request failed server-error unlogged=",
			"INFO imds answering again failed=5",
			"DEBUG imds answering again failed=1", // read 9: within a minute
			"WARN imds request failed server-error unlogged=1",
			"INFO imds answering again failed=1",
		}
		if !slices.Equal(got, want) {
			t.Errorf("fault lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// TestSpotGapWithHangs: with every path hanging until its request bound,
// the spot reads still begin at most 10s apart: another path's poll that
// could run into the next spot read waits until after it.
func TestSpotGapWithHangs(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newLocalFake(t)
		lr := newRecorder(t)
		until := time.Now().Add(time.Hour)
		hangs := func(int) (int, string) {
			if time.Now().Before(until) {
				return hang, ""
			}
			return http.StatusNotFound, ""
		}
		for _, p := range []string{pathSpot, pathASG, pathRebalance, pathScheduled} {
			f.set(p, hangs)
		}
		start(t, defaultConfig(f, lr, Spot, ASG, Rebalance, Scheduled))
		time.Sleep(61 * time.Minute)

		times := f.getTimes(pathSpot)
		if len(times) < 360 {
			t.Fatalf("only %d spot reads in an hour", len(times))
		}
		for i, g := range gaps(times) {
			if g > 10*time.Second {
				t.Errorf("%v between spot reads %d and %d", g, i+1, i+2)
			}
		}
		for _, p := range []string{pathASG, pathRebalance, pathScheduled} {
			if n := len(f.getTimes(p)); n < 60 {
				t.Errorf("only %d reads of %s: held back for good", n, p)
			}
		}
		w := lr.find(slog.LevelWarn, "imds request failed")
		if len(w) != 1 || w[0].attrs["error"] != "timeout: no answer within 1s" {
			t.Errorf("warnings = %v, want one timeout", w)
		}
		if back := lr.find(slog.LevelInfo, "imds answering again"); len(back) != 1 {
			t.Errorf("end of fault lines = %v, want 1", back)
		}
	})
}

// TestCutAnswers: an answer whose body never comes whole (a drip) is a
// timeout, and a connection reset before an answer is its own class, each
// named with what was seen; neither harms the next poll.
func TestCutAnswers(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	deadline := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	body := spotBody("terminate", deadline)
	f.set(pathSpot, func(n int) (int, string) {
		switch {
		case n <= 2:
			return stall, body
		case n <= 6: // the SDK tries a broken connection twice
			return reset, ""
		}
		return 200, body
	})
	cfg := testConfig(f, lr, Spot)
	cfg.requestTimeout = 200 * time.Millisecond
	if n := recv(t, start(t, cfg)); !n.Deadline.Equal(deadline) {
		t.Errorf("notice = %+v", n)
	}
	var got []string
	for _, w := range lr.find(slog.LevelWarn, "imds request failed") {
		got = append(got, w.attrs["class"]+" / "+w.attrs["error"])
	}
	want := []string{
		"timeout / timeout: http 200, body not whole within 200ms",
		"connection-reset / connection-reset: connection reset by peer (ECONNRESET)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings = %q, want %q", got, want)
	}
	if back := lr.await(t, slog.LevelInfo, "imds answering again", 1); back[0].attrs["failed_polls"] != "4" {
		t.Errorf("end of fault = %s, want 4 failed polls", back[0].text)
	}
}

// TestShortErrors: warnings carry a short error naming the class and
// what was seen on the wire; debug lines the whole chain.
func TestShortErrors(t *testing.T) {
	dns := &net.DNSError{Err: "no such host", Name: "imds.invalid", IsNotFound: true}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &net.OpError{Op: "connect", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		fe   *fetchError
		want string
	}{
		{&fetchError{class: failThrottled, status: 429}, "throttled: http 429"},
		{&fetchError{class: failForbidden, status: 403}, "forbidden: http 403"},
		{&fetchError{class: failUnreachable, netErr: refused}, "unreachable: connection refused (ECONNREFUSED)"},
		{&fetchError{class: failUnreachable, netErr: dns}, "unreachable: lookup imds.invalid: no such host"},
		{&fetchError{class: failUnreachable, netErr: context.DeadlineExceeded, timeout: time.Second}, "unreachable: no connection within 1s"},
		{&fetchError{class: failTokenTimeout, netErr: context.DeadlineExceeded, timeout: time.Second}, "token-timeout: no answer within 1s"},
		{&fetchError{class: failTooLarge, status: 200}, "response-too-large: answer larger than 65536 bytes"},
		{&fetchError{class: failTimeout, status: 200, timeout: time.Second}, "timeout: http 200, body not whole within 1s"},
		{&fetchError{class: failReset, netErr: io.EOF}, "connection-reset: connection closed without an answer"},
		{&fetchError{class: failOther, err: fmt.Errorf("operation error: %w", errors.New("the cause"))}, "other: the cause"},
	} {
		if got := tc.fe.short(); got != tc.want {
			t.Errorf("short(%+v) = %q, want %q", tc.fe, got, tc.want)
		}
	}

	// Against a closed port, through the SDK.
	lr := newRecorder(t)
	cfg := testConfig(newFake(t), lr, Spot)
	cfg.Endpoint = closedAddr(t)
	start(t, cfg)
	lr.await(t, slog.LevelDebug, "imds poll failed", 1)
	w := lr.await(t, slog.LevelWarn, "imds request failed", 1)[0]
	if w.attrs["error"] != "unreachable: connection refused (ECONNREFUSED)" {
		t.Errorf("warning = %s", w.text)
	}
	if d := lr.find(slog.LevelDebug, "imds poll failed")[0]; !strings.Contains(d.attrs["error"], "operation error") {
		t.Errorf("debug line lacks the SDK's chain: %s", d.text)
	}
	for _, r := range lr.atLeast(slog.LevelInfo) {
		if len(r.text) > 300 || strings.Contains(r.text, "operation error") {
			t.Errorf("long or nested line at %v: %s", r.level, r.text)
		}
	}
}
