package interruption

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGetNotFound checks that a 404 from the GET is "nothing yet", and a
// 404 from the token PUT is not.
func TestGetNotFound(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	client, hc := newClient(f.srv.URL, nil)
	defer hc.CloseIdleConnections()
	ctx := context.Background()

	body, found, err := get(ctx, client, pathSpot, time.Second)
	if err != nil || found || body != nil {
		t.Fatalf("get on 404 = %q, %v, %v; want nothing", body, found, err)
	}

	f.set(pathSpot, static(200, "x"))
	if body, found, err := get(ctx, client, pathSpot, time.Second); err != nil || !found || string(body) != "x" {
		t.Fatalf("get = %q, %v, %v; want x", body, found, err)
	}

	f.update(func(f *fakeIMDS) { f.tokenStatus = http.StatusNotFound; clear(f.valid) })
	_, found, err = get(ctx, client, pathSpot, time.Second)
	var fe *fetchError
	if found || !errors.As(err, &fe) || fe.class != failTokenRejected || fe.status != 404 {
		t.Fatalf("get with token PUT 404 = %v, %v; want a token-rejected error", found, err)
	}
}

func TestSpotNotice(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	deadline := time.Now().Add(2 * time.Minute).Truncate(time.Second).UTC()
	f.set(pathSpot, func(n int) (int, string) {
		if n < 3 {
			return 404, ""
		}
		return 200, spotBody("terminate", deadline)
	})
	before := time.Now()
	ch := start(t, testConfig(f, lr, Spot))
	n := recv(t, ch)
	want := Notice{Kind: Spot, Action: "terminate", ID: "spot/terminate", Time: deadline, Deadline: deadline}
	if n.Kind != want.Kind || n.Action != want.Action || n.ID != want.ID || !n.Time.Equal(deadline) || !n.Deadline.Equal(deadline) || n.Update {
		t.Errorf("notice = %+v, want %+v", n, want)
	}
	if n.Seen.Before(before) || n.Seen.After(time.Now()) {
		t.Errorf("Seen = %v, not during the test", n.Seen)
	}
	recs := lr.await(t, slog.LevelInfo, "interruption notice", 1)
	for _, k := range []string{"kind", "action", "notice_time", "deadline", "lead"} {
		if recs[0].attrs[k] == "" {
			t.Errorf("notice log line lacks %q: %s", k, recs[0].text)
		}
	}
	lr.await(t, slog.LevelInfo, "imds watching started", 1)
	if w := lr.atLeast(slog.LevelWarn); len(w) > 0 {
		t.Errorf("unexpected warnings: %v", w)
	}
}

// TestNothingYet: the normal case, 404 on every path, gives no notice and
// no warning.
func TestNothingYet(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	ch := start(t, testConfig(f, lr, Spot, ASG, Rebalance, Scheduled))
	for _, p := range []string{pathSpot, pathASG, pathRebalance, pathScheduled} {
		f.morePolls(t, p, 5)
	}
	none(t, ch)
	if w := lr.atLeast(slog.LevelWarn); len(w) > 0 {
		t.Errorf("unexpected warnings: %v", w)
	}
	if got := lr.atLeast(slog.LevelInfo); len(got) != 1 || got[0].msg != "imds watching started" {
		t.Errorf("info lines = %v, want only the start line", got)
	}
}

// TestTokenReuseAndRenewal: one token PUT serves many polls; when IMDS
// starts answering 401 to it, one new PUT, and the poll still succeeds
// (the SDK's second attempt). The token never reaches the logs.
func TestTokenReuseAndRenewal(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	start(t, testConfig(f, lr, Spot))
	f.morePolls(t, pathSpot, 20)
	f.read(func(f *fakeIMDS) {
		if f.puts != 1 {
			t.Errorf("%d token PUTs for %d polls, want 1", f.puts, f.gets[pathSpot])
		}
	})

	f.expire()
	f.morePolls(t, pathSpot, 20)
	f.read(func(f *fakeIMDS) {
		if f.puts != 2 {
			t.Errorf("%d token PUTs after the token expired, want 2", f.puts)
		}
		if f.unauth != 1 {
			t.Errorf("%d GETs answered 401, want 1", f.unauth)
		}
	})
	if w := lr.atLeast(slog.LevelWarn); len(w) > 0 {
		t.Errorf("a renewed token should not warn: %v", w)
	}
	if strings.Contains(lr.text(), tokenSecret) {
		t.Errorf("token in the logs:\n%s", lr.text())
	}
}

// TestTokenExpiry: the SDK renews the token when its TTL (from the
// answer's header) runs out, without waiting for a 401.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	f.update(func(f *fakeIMDS) { f.tokenTTL = "1" })
	start(t, testConfig(f, lr, Spot))
	f.await(t, "a second token PUT", func(f *fakeIMDS) bool { return f.puts >= 2 })
	f.read(func(f *fakeIMDS) {
		if f.unauth != 0 {
			t.Errorf("%d GETs answered 401; the fake never expires tokens", f.unauth)
		}
		if f.gets[pathSpot] < 10 {
			t.Errorf("new token after %d polls, want one per TTL", f.gets[pathSpot])
		}
	})
}

// TestTokenNotLoggedOnFailures looks for the token in debug logs of
// failing requests.
func TestTokenNotLoggedOnFailures(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	f.set(pathSpot, static(500, "oops"))
	f.set(pathASG, static(200, "{bad"))
	f.set(pathRebalance, static(401, ""))
	start(t, testConfig(f, lr, Spot, ASG, Rebalance))
	lr.await(t, slog.LevelDebug, "imds poll failed", 6)
	f.morePolls(t, pathASG, 3)
	text := lr.text()
	if strings.Contains(text, tokenSecret) || strings.Contains(strings.ToLower(text), "x-aws-ec2-metadata-token:") {
		t.Errorf("token in the logs:\n%s", text)
	}
}

func TestForbiddenOn(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	f.update(func(f *fakeIMDS) { f.tokenStatus = http.StatusForbidden })
	ch := start(t, testConfig(f, lr, Spot))
	lr.await(t, slog.LevelDebug, "imds poll failed", 4)
	warns := lr.find(slog.LevelWarn, "imds request failed")
	if len(warns) != 1 {
		t.Fatalf("%d warnings for repeated 403s, want 1 (rate-limited): %v", len(warns), warns)
	}
	if w := warns[0]; w.attrs["class"] != failForbidden || !strings.Contains(w.attrs["hint"], "--http-endpoint enabled") {
		t.Errorf("warning = %s, want class forbidden and a hint how to enable IMDS", w.text)
	}
	// It recovers once IMDS is turned on.
	deadline := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	f.set(pathSpot, static(200, spotBody("stop", deadline)))
	f.update(func(f *fakeIMDS) { f.tokenStatus = 0 })
	if n := recv(t, ch); n.Action != "stop" || !n.Deadline.Equal(deadline) {
		t.Errorf("notice = %+v", n)
	}
}

// TestThrottledAndServerErrors: 429s and 500s back off and warn once per
// kind of failure, then the notice gets through.
func TestThrottledAndServerErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	deadline := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	f.set(pathSpot, func(n int) (int, string) {
		switch {
		case n <= 6:
			return http.StatusTooManyRequests, ""
		case n <= 12:
			return http.StatusInternalServerError, "internal"
		}
		return 200, spotBody("terminate", deadline)
	})
	ch := start(t, testConfig(f, lr, Spot))
	n := recv(t, ch)
	if n.ID != "spot/terminate" || !n.Deadline.Equal(deadline) {
		t.Errorf("notice = %+v", n)
	}
	warns := lr.find(slog.LevelWarn, "imds request failed")
	classes := map[string]int{}
	for _, w := range warns {
		classes[w.attrs["class"]]++
	}
	if len(warns) != 2 || classes[failThrottled] != 1 || classes[failServer] != 1 {
		t.Errorf("warnings = %v, want one throttled and one server-error", warns)
	}
	// A status IMDS chose to send is not retried within the poll: 12
	// failing answers were 12 failed polls, one episode that ended once.
	if got := len(lr.find(slog.LevelDebug, "imds poll failed")); got != 12 {
		t.Errorf("%d failed polls for 12 failing answers, want 12", got)
	}
	if back := lr.await(t, slog.LevelInfo, "imds answering again", 1); len(back) != 1 || back[0].attrs["failed_polls"] != "12" {
		t.Errorf("end of fault = %v, want one with failed_polls=12", back)
	}
}

func TestRateLimiter(t *testing.T) {
	r := newRateLimiter(time.Minute)
	t0 := time.Now()
	check := func(key string, at time.Duration, ok bool, suppressed int) {
		t.Helper()
		gotOK, gotN := r.allow(key, t0.Add(at))
		if gotOK != ok || gotN != suppressed {
			t.Errorf("allow(%s, +%v) = %v, %d; want %v, %d", key, at, gotOK, gotN, ok, suppressed)
		}
	}
	check("a", 0, true, 0)
	check("a", time.Second, false, 0)
	check("b", time.Second, true, 0)
	check("a", 2*time.Second, false, 0)
	check("a", 61*time.Second, true, 2)
	check("a", 62*time.Second, false, 0)
}

// TestHungTokenRequest: a token PUT that never answers is cut off by the
// per-request timeout, named as the hop-limit problem, and polling goes on.
func TestHungTokenRequest(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	f.update(func(f *fakeIMDS) { f.hangPut = true })

	client, hc := newClient(f.srv.URL, nil)
	defer hc.CloseIdleConnections()
	began := time.Now()
	_, _, err := get(context.Background(), client, pathSpot, 150*time.Millisecond)
	if took := time.Since(began); took > 900*time.Millisecond {
		t.Errorf("hung token request took %v with a 150ms timeout", took)
	}
	var fe *fetchError
	if !errors.As(err, &fe) || fe.class != failTokenTimeout {
		t.Fatalf("err = %v, want token-timeout", err)
	}

	cfg := testConfig(f, lr, Spot)
	cfg.requestTimeout = 50 * time.Millisecond
	began = time.Now()
	ch := start(t, cfg)
	if took := time.Since(began); took > 100*time.Millisecond {
		t.Errorf("Watch took %v to return", took)
	}
	w := lr.await(t, slog.LevelWarn, "imds request failed", 1)[0]
	if w.attrs["class"] != failTokenTimeout || !strings.Contains(w.attrs["hint"], "HttpPutResponseHopLimit") {
		t.Errorf("warning = %s", w.text)
	}
	deadline := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	f.set(pathSpot, static(200, spotBody("terminate", deadline)))
	f.update(func(f *fakeIMDS) { f.hangPut = false })
	if n := recv(t, ch); !n.Deadline.Equal(deadline) {
		t.Errorf("notice = %+v", n)
	}
}

// TestTokenWithoutTTL: a whole token answer without its lifetime header
// is one the SDK refuses. The warning says so, not that the connection
// broke, and the watcher keeps going: once the header comes, it reads.
func TestTokenWithoutTTL(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	f.update(func(f *fakeIMDS) { f.noTTL = true })
	ch := start(t, testConfig(f, lr, Spot))
	w := lr.await(t, slog.LevelWarn, "imds request failed", 1)[0]
	if w.attrs["class"] != failUnusable || !strings.Contains(w.attrs["error"], "http 200, but") ||
		!strings.Contains(w.attrs["hint"], "--imds-endpoint") {
		t.Errorf("warning = %s", w.text)
	}
	deadline := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	f.set(pathSpot, static(200, spotBody("terminate", deadline)))
	f.update(func(f *fakeIMDS) { f.noTTL = false })
	if n := recv(t, ch); !n.Deadline.Equal(deadline) {
		t.Errorf("notice = %+v", n)
	}
}

// TestHungGet: a GET that never answers is cut off by the default timeout
// of 1s, and the next poll still works.
func TestHungGet(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	deadline := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	f.set(pathSpot, func(n int) (int, string) {
		if n == 1 {
			return hang, ""
		}
		return 200, spotBody("terminate", deadline)
	})
	cfg := testConfig(f, lr, Spot)
	cfg.requestTimeout = 0 // the default: 1s
	began := time.Now()
	ch := start(t, cfg)
	n := recv(t, ch)
	if took := time.Since(began); took < 900*time.Millisecond || took > 5*time.Second {
		t.Errorf("notice after a hung GET took %v, want about 1s", took)
	}
	if !n.Deadline.Equal(deadline) {
		t.Errorf("notice = %+v", n)
	}
	if w := lr.find(slog.LevelWarn, "imds request failed"); len(w) != 1 || w[0].attrs["class"] != failTimeout {
		t.Errorf("warnings = %v, want one timeout", w)
	}
}

// closedAddr returns a URL on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestConnectionRefusedOn(t *testing.T) {
	t.Parallel()
	lr := newRecorder(t)
	cfg := testConfig(newFake(t), lr, Spot)
	cfg.Endpoint = closedAddr(t)
	start(t, cfg)
	lr.await(t, slog.LevelDebug, "imds poll failed", 3)
	w := lr.find(slog.LevelWarn, "imds request failed")
	if len(w) != 1 || w[0].attrs["class"] != failUnreachable {
		t.Errorf("warnings = %v, want one unreachable", w)
	}
}

// TestAutoUnavailable: in auto mode, each way of there being no IMDS gives
// exactly one line saying so and what to change, then silent re-probes.
func TestAutoUnavailable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(f *fakeIMDS, cfg *Config)
		level slog.Level
		class string
		hint  string
	}{
		{"refused", func(f *fakeIMDS, cfg *Config) { cfg.Endpoint = closedAddr(t) }, slog.LevelInfo, failUnreachable, "--imds off"},
		{"forbidden", func(f *fakeIMDS, cfg *Config) { f.tokenStatus = http.StatusForbidden }, slog.LevelWarn, failForbidden, "--http-endpoint enabled"},
		{"token timeout", func(f *fakeIMDS, cfg *Config) { f.hangPut = true }, slog.LevelWarn, failTokenTimeout, "HttpPutResponseHopLimit to 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			lr := newRecorder(t)
			cfg := testConfig(f, lr, Spot)
			cfg.Mode = Auto
			cfg.requestTimeout = 50 * time.Millisecond
			f.update(func(f *fakeIMDS) { tc.setup(f, &cfg) })
			start(t, cfg)
			lr.await(t, slog.LevelDebug, "imds probe failed", 3)
			lines := lr.atLeast(slog.LevelInfo)
			if len(lines) != 1 {
				t.Fatalf("%d info-or-higher lines, want 1:\n%s", len(lines), lr.text())
			}
			l := lines[0]
			if l.msg != "imds unavailable" || l.level != tc.level || l.attrs["reason"] != tc.class || !strings.Contains(l.attrs["hint"], tc.hint) {
				t.Errorf("line = %s; want %v imds unavailable, reason %s, hint with %q", l.text, tc.level, tc.class, tc.hint)
			}
			// One short line: the class and what was seen, not the SDK's
			// nested chain, which is at debug.
			if !strings.HasPrefix(l.attrs["error"], tc.class+": ") || len(l.text) > 300 || strings.Contains(l.text, "operation error") {
				t.Errorf("line = %s (%d bytes); want a short error", l.text, len(l.text))
			}
			if d := lr.find(slog.LevelDebug, "imds probe failed")[0]; !strings.Contains(d.attrs["error"], "operation error") {
				t.Errorf("debug line lacks the SDK's chain: %s", d.text)
			}
			f.read(func(f *fakeIMDS) {
				for p, n := range f.gets {
					if n > 0 && tc.class != failForbidden {
						t.Errorf("%d GETs of %s while IMDS is unavailable", n, p)
					}
				}
			})
		})
	}
}

// TestAutoRecovers: when a later probe succeeds, watching starts.
func TestAutoRecovers(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	f.update(func(f *fakeIMDS) { f.tokenStatus = http.StatusForbidden })
	cfg := testConfig(f, lr, Spot)
	cfg.Mode = Auto
	ch := start(t, cfg)
	lr.await(t, slog.LevelDebug, "imds probe failed", 2)
	deadline := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	f.set(pathSpot, static(200, spotBody("terminate", deadline)))
	f.update(func(f *fakeIMDS) { f.tokenStatus = 0 })
	if n := recv(t, ch); !n.Deadline.Equal(deadline) {
		t.Errorf("notice = %+v", n)
	}
	lr.await(t, slog.LevelInfo, "imds watching started", 1)
}

// TestAutoServerErrorIsPresent: a 500 means IMDS is there; auto polls.
func TestAutoServerErrorIsPresent(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	f.set(pathSpot, static(500, ""))
	cfg := testConfig(f, lr, Spot)
	cfg.Mode = Auto
	start(t, cfg)
	lr.await(t, slog.LevelInfo, "imds watching started", 1)
	lr.await(t, slog.LevelWarn, "imds request failed", 1)
	if got := lr.find(slog.LevelInfo, "imds unavailable"); len(got) != 0 {
		t.Errorf("unexpected %v", got)
	}
}

// TestSkipped: nothing to watch means one line, no request and no
// goroutine, and the channel closes with ctx.
func TestSkipped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mode   Mode
		kinds  []Kind
		env    map[string]string
		reason string
		level  slog.Level
	}{
		{"off", Off, []Kind{Spot}, nil, "imds mode is off", slog.LevelInfo},
		{"no kinds", On, nil, nil, "no notice kinds enabled", slog.LevelInfo},
		{"fargate", Auto, []Kind{Spot}, map[string]string{"AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"}, "running on fargate", slog.LevelInfo},
		{"disabled", Auto, []Kind{Spot}, map[string]string{"AWS_EC2_METADATA_DISABLED": "True"}, "AWS_EC2_METADATA_DISABLED is true", slog.LevelInfo},
		{"bad endpoint", On, []Kind{Spot}, map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": "169.254.169.254"}, "invalid imds endpoint", slog.LevelWarn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			lr := newRecorder(t)
			cfg := testConfig(f, lr, tc.kinds...)
			cfg.Mode = tc.mode
			cfg.Getenv = func(k string) string { return tc.env[k] }
			if tc.name == "bad endpoint" {
				cfg.Endpoint = ""
			}
			ctx, cancel := context.WithCancel(context.Background())
			ch := Watch(ctx, cfg)
			lines := lr.atLeast(slog.LevelDebug)
			if len(lines) != 1 || lines[0].msg != "imds watching skipped" || lines[0].level != tc.level ||
				!strings.Contains(lines[0].attrs["reason"], tc.reason) {
				t.Errorf("log = %s, want one %v skipped line with reason %q", lr.text(), tc.level, tc.reason)
			}
			none(t, ch)
			cancel()
			awaitClosed(t, ch)
			f.read(func(f *fakeIMDS) {
				if f.puts+len(f.gets)+f.other != 0 {
					t.Errorf("skipped watcher made requests")
				}
			})
		})
	}
}

// TestOnIgnoresDisabledEnv: On watches even with AWS_EC2_METADATA_DISABLED.
func TestOnIgnoresDisabledEnv(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	cfg := testConfig(f, lr, Spot)
	cfg.Getenv = func(k string) string {
		if k == "AWS_EC2_METADATA_DISABLED" {
			return "true"
		}
		return ""
	}
	start(t, cfg)
	f.morePolls(t, pathSpot, 2)
}

// TestEndpointFromEnv: with no Endpoint, AWS_EC2_METADATA_SERVICE_ENDPOINT
// (through Getenv) is used.
func TestEndpointFromEnv(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	cfg := testConfig(f, lr, Spot)
	cfg.Endpoint = ""
	cfg.Getenv = func(k string) string {
		if k == "AWS_EC2_METADATA_SERVICE_ENDPOINT" {
			return f.srv.URL
		}
		return ""
	}
	start(t, cfg)
	f.morePolls(t, pathSpot, 2)
	if got := lr.await(t, slog.LevelInfo, "imds watching started", 1)[0].attrs["endpoint"]; got != f.srv.URL {
		t.Errorf("endpoint = %q, want %q", got, f.srv.URL)
	}
}

// TestUnreadableBodies: malformed, partial and huge answers warn
// (rate-limited) and polling goes on.
func TestUnreadableBodies(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	deadline := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	huge := `{"action":"terminate","time":"` + strings.Repeat("9", 1<<20) + `"}`
	f.set(pathSpot, func(n int) (int, string) {
		switch {
		case n <= 3:
			return 200, `{"action":"terminate","ti`
		case n <= 6:
			return 200, `<html>maintenance</html>`
		case n <= 9:
			return 200, huge
		case n <= 10:
			return 200, `{"action":"terminate"}`
		}
		return 200, spotBody("terminate", deadline)
	})
	ch := start(t, testConfig(f, lr, Spot))
	if n := recv(t, ch); !n.Deadline.Equal(deadline) {
		t.Errorf("notice = %+v", n)
	}
	if got := lr.find(slog.LevelWarn, "imds notice unreadable"); len(got) != 1 {
		t.Errorf("%d unreadable warnings, want 1 (rate-limited): %v", len(got), got)
	}
	if got := lr.find(slog.LevelDebug, "imds notice unreadable"); len(got) != 7 {
		t.Errorf("%d unreadable polls, want 7", len(got))
	}
	if got := lr.find(slog.LevelWarn, "imds request failed"); len(got) != 1 || got[0].attrs["class"] != failTooLarge {
		t.Errorf("warnings = %v, want one response-too-large", got)
	}
	for _, r := range lr.atLeast(slog.LevelDebug) {
		if len(r.text) > 2000 {
			t.Errorf("log line of %d bytes", len(r.text))
		}
	}
}

// TestPastTime: a notice whose time has passed (but is not stale) is
// still a notice, its deadline in the past.
func TestPastTime(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	past := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	f.set(pathSpot, static(200, spotBody("terminate", past)))
	cfg := testConfig(f, lr, Spot)
	if n := recv(t, start(t, cfg)); !n.Deadline.Equal(past) {
		t.Errorf("notice = %+v, want deadline %v", n, past)
	}
}

// TestStale: a notice from long before start is logged once and ignored;
// a fresh one for the same action still gets through.
func TestStale(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	now := time.Now()
	stale := now.Add(-10 * time.Minute).UTC().Truncate(time.Second)
	f.set(pathSpot, static(200, spotBody("terminate", stale)))
	cfg := testConfig(f, lr, Spot)
	cfg.Start = now
	cfg.StaleAfter = time.Minute
	ch := start(t, cfg)
	f.morePolls(t, pathSpot, 10)
	none(t, ch)
	ignored := lr.find(slog.LevelInfo, "imds notice ignored")
	if len(ignored) != 1 || ignored[0].attrs["reason"] != "stale" {
		t.Errorf("ignored lines = %v, want one stale", ignored)
	}
	fresh := now.Add(time.Minute).UTC().Truncate(time.Second)
	f.set(pathSpot, static(200, spotBody("terminate", fresh)))
	if n := recv(t, ch); !n.Deadline.Equal(fresh) || n.Update {
		t.Errorf("notice = %+v, want fresh", n)
	}
}

// TestRepeatedNoticeMovingTime: AEMM serves the notice again on every poll
// with a new, later time; it is delivered once.
func TestRepeatedNoticeMovingTime(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	base := time.Now().Add(2 * time.Minute).UTC().Truncate(time.Second)
	f.set(pathSpot, func(n int) (int, string) {
		return 200, spotBody("terminate", base.Add(time.Duration(n)*time.Second))
	})
	ch := start(t, testConfig(f, lr, Spot, ASG))
	first := recv(t, ch)
	f.morePolls(t, pathSpot, 10)
	none(t, ch)
	f.set(pathASG, static(200, "Terminated"))
	if n := recv(t, ch); n.Kind != ASG {
		t.Errorf("after the repeats got %+v (first was %+v), want the asg marker", n, first)
	}
	if got := lr.find(slog.LevelInfo, "interruption notice"); len(got) != 2 {
		t.Errorf("%d notice lines, want 2", len(got))
	}
}

// TestDeadlineMoves: a later deadline is never delivered; an earlier one
// is, as an Update.
func TestDeadlineMoves(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	t1 := time.Now().Add(2 * time.Minute).UTC().Truncate(time.Second)
	f.set(pathSpot, static(200, spotBody("terminate", t1)))
	ch := start(t, testConfig(f, lr, Spot))
	if n := recv(t, ch); !n.Deadline.Equal(t1) || n.Update {
		t.Fatalf("first notice = %+v", n)
	}
	f.set(pathSpot, static(200, spotBody("terminate", t1.Add(time.Minute))))
	f.morePolls(t, pathSpot, 5)
	none(t, ch)
	t0 := t1.Add(-30 * time.Second)
	f.set(pathSpot, static(200, spotBody("terminate", t0)))
	n := recv(t, ch)
	if !n.Update || !n.Deadline.Equal(t0) || n.ID != "spot/terminate" {
		t.Errorf("update = %+v, want Update with deadline %v", n, t0)
	}
	f.morePolls(t, pathSpot, 5)
	none(t, ch)
	// Another action is another notice.
	f.set(pathSpot, static(200, spotBody("stop", t0)))
	if n := recv(t, ch); n.ID != "spot/stop" || n.Update {
		t.Errorf("notice = %+v, want spot/stop", n)
	}
}

func TestUnknownSpotAction(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	tm := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	f.set(pathSpot, static(200, spotBody("reboot", tm)))
	ch := start(t, testConfig(f, lr, Spot))
	f.morePolls(t, pathSpot, 10)
	none(t, ch)
	if got := lr.find(slog.LevelInfo, "imds notice ignored"); len(got) != 1 || got[0].attrs["action"] != "reboot" {
		t.Errorf("ignored lines = %v, want one for reboot", got)
	}
	f.set(pathSpot, static(200, spotBody("hibernate", tm)))
	if n := recv(t, ch); n.Action != "hibernate" {
		t.Errorf("notice = %+v", n)
	}
}

func TestASG(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	f.set(pathASG, func(n int) (int, string) {
		if n <= 3 {
			return 200, "InService\n"
		}
		return 200, "Terminated\n"
	})
	cfg := testConfig(f, lr, ASG, Rebalance)
	cfg.DefaultLead = 90 * time.Second
	ch := start(t, cfg)
	n := recv(t, ch)
	if n.Kind != ASG || n.Action != "terminate" || n.ID != "asg-terminate" || !n.Time.IsZero() || n.Deadline != n.Seen.Add(90*time.Second) {
		t.Errorf("notice = %+v", n)
	}
	f.read(func(f *fakeIMDS) {
		if f.gets[pathASG] < 4 {
			t.Errorf("notice before Terminated was served")
		}
	})
	f.morePolls(t, pathASG, 5)
	none(t, ch)
	noticeTime := time.Now().UTC().Truncate(time.Second)
	f.set(pathRebalance, static(200, fmt.Sprintf(`{"noticeTime":%q}`, noticeTime.Format(time.RFC3339))))
	n = recv(t, ch)
	if n.Kind != Rebalance || n.Action != "rebalance" || n.ID != "rebalance" || !n.Time.Equal(noticeTime) || !n.Deadline.IsZero() {
		t.Errorf("rebalance notice = %+v", n)
	}
	f.morePolls(t, pathRebalance, 5)
	none(t, ch)
}

func scheduledBody(events ...string) string {
	return "[" + strings.Join(events, ",") + "]"
}

func scheduledEntry(id, code, state string, notBefore time.Time) string {
	return fmt.Sprintf(`{"NotBefore":%q,"NotAfter":%q,"Code":%q,"Description":"test","EventId":%q,"State":%q}`,
		notBefore.UTC().Format(scheduledLayout), notBefore.Add(time.Hour).UTC().Format(scheduledLayout), code, id, state)
}

// TestScheduledLead: events act at NotBefore - ScheduledLead, never at once
// just because they exist; events already due act at once; canceled,
// maintenance and (by default) reboot events never act.
func TestScheduledLead(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	now := time.Now()
	notBefore := now.Add(3 * time.Second).Truncate(time.Second) // 2-3s ahead, whole seconds as IMDS gives them
	actAt := now.Add(400 * time.Millisecond)
	lead := notBefore.Sub(actAt)
	past := now.Add(-time.Hour).Truncate(time.Second)
	f.set(pathScheduled, static(200, scheduledBody(
		scheduledEntry("instance-event-future", "instance-stop", "active", notBefore),
		scheduledEntry("instance-event-past", "instance-retirement", "active", past),
		scheduledEntry("instance-event-canceled", "instance-stop", "canceled", past),
		scheduledEntry("instance-event-maint", "system-maintenance", "active", past),
		scheduledEntry("instance-event-reboot", "system-reboot", "active", past),
	)))
	cfg := testConfig(f, lr, Scheduled)
	cfg.ScheduledLead = lead
	ch := start(t, cfg)

	n := recv(t, ch)
	if n.ID != "instance-event-past" || n.Action != "instance-retirement" || !n.Deadline.Equal(past) || !n.Time.Equal(past) {
		t.Errorf("first notice = %+v, want the past retirement", n)
	}
	n = recv(t, ch)
	if got := time.Now(); got.Before(actAt) {
		t.Errorf("scheduled event delivered %v before NotBefore - lead", actAt.Sub(got))
	}
	if n.ID != "instance-event-future" || n.Kind != Scheduled || n.Action != "instance-stop" || !n.Deadline.Equal(notBefore) {
		t.Errorf("second notice = %+v", n)
	}
	if n.Seen.After(actAt) {
		t.Errorf("Seen = %v, want when first seen (before %v)", n.Seen, actAt)
	}
	f.morePolls(t, pathScheduled, 5)
	none(t, ch)
	ignored := lr.find(slog.LevelInfo, "imds notice ignored")
	if len(ignored) != 2 {
		t.Errorf("ignored = %v, want the maintenance and reboot events once each", ignored)
	}
}

func TestScheduledReboot(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	past := time.Now().Add(-time.Minute).Truncate(time.Second)
	f.set(pathScheduled, static(200, scheduledBody(scheduledEntry("e-reboot", "instance-reboot", "active", past))))
	cfg := testConfig(f, lr, Scheduled)
	cfg.ScheduledReboot = true
	if n := recv(t, start(t, cfg)); n.ID != "e-reboot" || n.Action != "instance-reboot" {
		t.Errorf("notice = %+v", n)
	}
}

// TestScheduledUpdate: a delivered event whose NotBefore moves earlier is
// delivered again as an Update; later is ignored.
func TestScheduledUpdate(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	nb := time.Now().Add(time.Hour).Truncate(time.Second)
	f.set(pathScheduled, static(200, scheduledBody(scheduledEntry("e1", "instance-stop", "active", nb))))
	cfg := testConfig(f, lr, Scheduled)
	cfg.ScheduledLead = 2 * time.Hour
	ch := start(t, cfg)
	if n := recv(t, ch); !n.Deadline.Equal(nb) || n.Update {
		t.Fatalf("notice = %+v", n)
	}
	f.set(pathScheduled, static(200, scheduledBody(scheduledEntry("e1", "instance-stop", "active", nb.Add(time.Hour)))))
	f.morePolls(t, pathScheduled, 5)
	none(t, ch)
	f.set(pathScheduled, static(200, scheduledBody(scheduledEntry("e1", "instance-stop", "active", nb.Add(-time.Minute)))))
	if n := recv(t, ch); !n.Update || !n.Deadline.Equal(nb.Add(-time.Minute)) {
		t.Errorf("update = %+v", n)
	}
}

// TestScheduledCancel: an event that disappears or stops being active
// before its time is never delivered.
func TestScheduledCancel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		after route
	}{
		{"removed", static(404, "")},
		{"empty list", static(200, "[]")},
		{"canceled", nil}, // set below: same event, State canceled
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			lr := newRecorder(t)
			now := time.Now()
			notBefore := now.Add(4 * time.Second).Truncate(time.Second)
			actAt := now.Add(time.Second) // the test must cancel the event before then
			f.set(pathScheduled, static(200, scheduledBody(scheduledEntry("e1", "instance-stop", "active", notBefore))))
			// The marker: a spot notice that appears only after the
			// scheduled event's time, so it comes first only if that
			// event was never delivered.
			spotAt := actAt.Add(200 * time.Millisecond)
			f.set(pathSpot, func(int) (int, string) {
				if time.Now().Before(spotAt) {
					return 404, ""
				}
				return 200, spotBody("terminate", now.Add(time.Minute))
			})
			cfg := testConfig(f, lr, Spot, Scheduled)
			cfg.ScheduledLead = notBefore.Sub(actAt)
			ch := start(t, cfg)
			lr.await(t, slog.LevelInfo, "scheduled event seen", 1)
			after := tc.after
			if after == nil {
				after = static(200, scheduledBody(scheduledEntry("e1", "instance-stop", "canceled", notBefore)))
			}
			f.set(pathScheduled, after)
			n := recv(t, ch)
			if n.Kind != Spot {
				t.Fatalf("got %+v, want the spot marker: the cancelled event was delivered", n)
			}
			lr.await(t, slog.LevelInfo, "scheduled event cancelled", 1)
		})
	}
}

// TestScheduledKeptOnFailure: a failed or unreadable poll does not cancel
// a pending event.
func TestScheduledKeptOnFailure(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	now := time.Now()
	notBefore := now.Add(3 * time.Second).Truncate(time.Second)
	actAt := now.Add(300 * time.Millisecond)
	good := scheduledBody(scheduledEntry("e1", "instance-stop", "active", notBefore))
	f.set(pathScheduled, func(n int) (int, string) {
		switch {
		case n == 1:
			return 200, good
		case n%2 == 0:
			return 500, ""
		}
		return 200, `[{"NotBefore":"soon","EventId":"e2","Code":"instance-stop","State":"active"}]`
	})
	cfg := testConfig(f, lr, Scheduled)
	cfg.ScheduledLead = notBefore.Sub(actAt)
	ch := start(t, cfg)
	if n := recv(t, ch); n.ID != "e1" {
		t.Errorf("notice = %+v", n)
	}
	if got := lr.find(slog.LevelInfo, "scheduled event cancelled"); len(got) != 0 {
		t.Errorf("cancelled on a failed poll: %v", got)
	}
}

// TestBlockedConsumer: a consumer that stops reading never keeps the
// watcher from ending.
func TestBlockedConsumer(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	lr := newRecorder(t)
	past := time.Now().Add(-time.Minute).Truncate(time.Second)
	var events []string
	for i := range 3 * noticeBuffer {
		events = append(events, scheduledEntry(fmt.Sprintf("e%d", i), "instance-stop", "active", past))
	}
	f.set(pathScheduled, static(200, scheduledBody(events...)))
	ctx, cancel := context.WithCancel(context.Background())
	ch := Watch(ctx, testConfig(f, lr, Scheduled))
	lr.await(t, slog.LevelInfo, "interruption notice", noticeBuffer+1)
	cancel()
	awaitClosed(t, ch)
}

// TestClassify: failures are classified by what happened on the wire.
func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		name string
		tr   *callTrace
		want string
	}{
		{"put 403", &callTrace{requests: 1, method: "PUT", gotConn: true, status: 403}, failForbidden},
		{"get 403", &callTrace{requests: 2, method: "GET", gotConn: true, status: 403}, failForbidden},
		{"put 500", &callTrace{requests: 2, method: "PUT", gotConn: true, status: 500}, failServer},
		{"put 429", &callTrace{requests: 2, method: "PUT", gotConn: true, status: 429}, failThrottled},
		{"put 405", &callTrace{requests: 1, method: "PUT", gotConn: true, status: 405}, failTokenRejected},
		{"get 401", &callTrace{requests: 4, method: "GET", gotConn: true, status: 401}, failUnauthorized},
		{"get 418", &callTrace{requests: 2, method: "GET", gotConn: true, status: 418}, failStatus},
		{"refused", &callTrace{requests: 1, method: "PUT", err: refused}, failUnreachable},
		{"connect timeout", &callTrace{requests: 1, method: "PUT", err: context.DeadlineExceeded}, failUnreachable},
		{"put timeout", &callTrace{requests: 1, method: "PUT", gotConn: true, err: context.DeadlineExceeded}, failTokenTimeout},
		{"get timeout", &callTrace{requests: 2, method: "GET", gotConn: true, err: context.DeadlineExceeded}, failTimeout},
		{"get reset", &callTrace{requests: 2, method: "GET", gotConn: true, err: syscall.ECONNRESET}, failReset},
		{"put closed", &callTrace{requests: 1, method: "PUT", gotConn: true, err: io.EOF}, failReset},
		{"body cut", &callTrace{requests: 2, method: "GET", gotConn: true, status: 200}, failReset},
		{"put 200 unusable", &callTrace{requests: 1, method: "PUT", gotConn: true, status: 200, whole: true}, failUnusable},
		{"too large", &callTrace{requests: 2, method: "GET", gotConn: true, status: 200, tooLarge: true}, failTooLarge},
		{"nothing sent", &callTrace{}, failOther},
	} {
		if got := classify(errors.New("x"), tc.tr, time.Second).class; got != tc.want {
			t.Errorf("%s: class %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestEveryPathAtPollInterval: with EveryPathAtPollInterval (a rehearsal
// against the simulator) every path is polled every PollInterval; without
// it, as against EC2's IMDS, asg and rebalance keep the slow interval and
// scheduled events their own.
func TestEveryPathAtPollInterval(t *testing.T) {
	const poll = 100 * time.Millisecond
	for _, tc := range []struct {
		every bool
		want  map[Kind]time.Duration
	}{
		{false, map[Kind]time.Duration{Spot: poll, ASG: defaultSlowInterval, Rebalance: defaultSlowInterval, Scheduled: defaultScheduledInterval}},
		{true, map[Kind]time.Duration{Spot: poll, ASG: poll, Rebalance: poll, Scheduled: poll}},
	} {
		w := newWatcher(Config{
			Mode: On, Endpoint: "http://127.0.0.1:9", Kinds: []Kind{Spot, ASG, Rebalance, Scheduled},
			PollInterval: poll, EveryPathAtPollInterval: tc.every,
		}, make(chan Notice))
		if w == nil {
			t.Fatal("newWatcher: nothing to watch")
		}
		if len(w.pollers) != len(tc.want) {
			t.Fatalf("every=%v: %d pollers, want %d", tc.every, len(w.pollers), len(tc.want))
		}
		for _, p := range w.pollers {
			if p.interval != tc.want[p.kind] {
				t.Errorf("every=%v: %s polled every %v, want %v", tc.every, p.kind, p.interval, tc.want[p.kind])
			}
		}
		w.hc.CloseIdleConnections()
	}
}
