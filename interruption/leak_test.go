package interruption

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"
)

// goroutines returns the stacks of all goroutines that run this package's
// code or hold an HTTP client connection.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		s := string(g)
		if strings.Contains(s, "spotinit/interruption.(*watcher)") ||
			strings.Contains(s, "spotinit/interruption.Watch") ||
			strings.Contains(s, "net/http.(*persistConn)") {
			out = append(out, s)
		}
	}
	return out
}

// awaitNoGoroutines waits until no goroutine of the watcher (or its HTTP
// connection) is left. Connection goroutines end just after their
// connection is closed, so this polls; the limit only bounds failure.
func awaitNoGoroutines(t *testing.T, baseline int) {
	t.Helper()
	limit := time.Now().Add(waitLimit)
	for {
		left := goroutines()
		if len(left) == 0 && runtime.NumGoroutine() <= baseline {
			return
		}
		if time.Now().After(limit) {
			t.Fatalf("goroutines left (%d, baseline %d):\n%s", runtime.NumGoroutine(), baseline, strings.Join(left, "\n\n"))
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling a condition, not waiting for one
	}
}

// TestNoGoroutineLeft runs (not in parallel) several watchers, cancels
// them, and checks that every goroutine they started has returned when the
// channel is closed (or just after, for the connection's own goroutines).
func TestNoGoroutineLeft(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fakeIMDS, cfg *Config)
		wait  func(t *testing.T, f *fakeIMDS, lr *logRecorder)
	}{
		{"polling with a pending event", func(f *fakeIMDS, cfg *Config) {
			f.routes[pathScheduled] = static(200, scheduledBody(scheduledEntry("e1", "instance-stop", "active", time.Now().Add(time.Hour))))
			f.routes[pathASG] = static(200, "Terminated")
		}, func(t *testing.T, f *fakeIMDS, lr *logRecorder) { f.morePolls(t, pathScheduled, 3) }},
		{"auto re-probing", func(f *fakeIMDS, cfg *Config) {
			cfg.Mode = Auto
			f.tokenStatus = 403
		}, func(t *testing.T, f *fakeIMDS, lr *logRecorder) {
			f.await(t, "3 probes", func(f *fakeIMDS) bool { return f.puts >= 3 })
		}},
		{"hung request", func(f *fakeIMDS, cfg *Config) {
			f.routes[pathSpot] = static(hang, "")
			cfg.requestTimeout = time.Second
		}, func(t *testing.T, f *fakeIMDS, lr *logRecorder) {
			f.await(t, "the hung poll", func(f *fakeIMDS) bool { return f.gets[pathSpot] > 0 })
		}},
		{"idle connection", func(f *fakeIMDS, cfg *Config) {
			cfg.PollInterval = time.Hour // cancel comes between polls
		}, func(t *testing.T, f *fakeIMDS, lr *logRecorder) {
			f.await(t, "a poll of each path", func(f *fakeIMDS) bool {
				return f.gets[pathSpot] > 0 && f.gets[pathASG] > 0 && f.gets[pathRebalance] > 0 && f.gets[pathScheduled] > 0
			})
			lr.await(t, slog.LevelDebug, "imds poll", 4)
		}},
		{"off", func(f *fakeIMDS, cfg *Config) { cfg.Mode = Off }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			lr := newRecorder(t)
			cfg := testConfig(f, lr, Spot, ASG, Rebalance, Scheduled)
			f.update(func(f *fakeIMDS) { tc.setup(f, &cfg) })
			baseline := runtime.NumGoroutine()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel() // also when the test fails early
			ch := Watch(ctx, cfg)
			if tc.wait == nil {
				if n, left := runtime.NumGoroutine(), goroutines(); n > baseline || len(left) > 0 {
					t.Errorf("Watch with nothing to watch started %d goroutines:\n%s", n-baseline, strings.Join(left, "\n\n"))
				}
			} else {
				tc.wait(t, f, lr)
			}
			cancel()
			awaitClosed(t, ch)
			awaitNoGoroutines(t, baseline)
		})
	}
}
