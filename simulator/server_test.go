package simulator

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// serverGoroutines lists the goroutines that belong to a simulator or to the
// net/http server side, by their stacks.
func serverGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "simulator.(*") || strings.Contains(g, "simulator.Start") ||
			strings.Contains(g, "net/http.(*conn).serve") || strings.Contains(g, "net/http.(*Server).Serve") {
			found = append(found, g)
		}
	}
	return found
}

// eventually fails unless cond becomes true; the deadline only bounds a
// failure.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// noServerGoroutines fails unless every server goroutine is gone. The last
// ones return just after Close has seen their connections close, so it
// polls.
func noServerGoroutines(t *testing.T) {
	t.Helper()
	eventually(t, "server goroutines to end", func() bool { return len(serverGoroutines()) == 0 })
}

// syncBuffer is a log destination that a test may read while a server
// writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// get does one IMDSv2 exchange against url with client.
func get(t *testing.T, c *http.Client, url, path string) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url+TokenPath, nil)
	req.Header.Set(ttlHeader, "60")
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	tok, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, url+path, nil)
	req.Header.Set(tokenHeader, string(tok))
	resp, err = c.Do(req)
	return resp, string(tok), err
}

func startServer(t *testing.T, ctx context.Context, sc Scenario, log *slog.Logger) *Server {
	t.Helper()
	s, err := Start(ctx, "127.0.0.1:0", sc, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStartServesAndLogs(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := startServer(t, context.Background(), Scenario{Spot: &SpotNotice{Action: "stop", After: time.Millisecond}}, log)
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL %q", s.URL())
	}
	c := &http.Client{}
	defer c.CloseIdleConnections()
	eventually(t, "the notice line", func() bool { return strings.Contains(logs.String(), "simulated spot notice visible") })
	resp, tok, err := get(t, c, s.URL(), SpotPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"action":"stop"`) {
		t.Errorf("got %d %s", resp.StatusCode, body)
	}
	if len(serverGoroutines()) == 0 {
		t.Fatal("no server goroutine found while serving: the leak check below would pass vacuously")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	c.CloseIdleConnections()
	noServerGoroutines(t)

	var info, debug []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		switch {
		case strings.Contains(line, "level=INFO"):
			info = append(info, line)
		case strings.Contains(line, "level=DEBUG"):
			debug = append(debug, line)
		default:
			t.Errorf("unexpected line %s", line)
		}
		if strings.Contains(line, tok) {
			t.Errorf("token logged: %s", line)
		}
	}
	if len(info) != 2 || !strings.Contains(info[0], `msg="simulated imds listening" url=`+s.URL()) ||
		!strings.Contains(info[1], `msg="simulated spot notice visible" action=stop notice_time=`) {
		t.Errorf("info lines:\n%s", strings.Join(info, "\n"))
	}
	if len(debug) != 3 || !strings.Contains(debug[1], `msg="imds request" method=GET path=/latest/meta-data/spot/instance-action status=200`) {
		t.Errorf("debug lines:\n%s", strings.Join(debug, "\n"))
	}
}

// TestStartLogsEveryNotice: every kind of notice in the scenario gets one
// "visible" line when it appears, in the order they appear, with what is
// served; a scheduled event per event.
func TestStartLogsEveryNotice(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	s := startServer(t, context.Background(), Scenario{
		Spot:      &SpotNotice{After: 40 * time.Millisecond},
		ASG:       &Delayed{After: 30 * time.Millisecond},
		Rebalance: &Delayed{After: 0},
		Scheduled: []ScheduledEvent{
			{Code: "instance-stop", StartsIn: time.Hour, After: 10 * time.Millisecond},
			{Code: "instance-retirement", EventID: "e-2", State: "canceled", StartsIn: 2 * time.Hour, After: 20 * time.Millisecond},
		},
	}, log)
	eventually(t, "the spot line", func() bool { return strings.Contains(logs.String(), "simulated spot notice visible") })
	s.Close()
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(line, "visible") {
			_, rest, _ := strings.Cut(line, "msg=")
			got = append(got, rest)
		}
	}
	want := []string{
		`"simulated rebalance notice visible" notice_time=`,
		`"simulated scheduled notice visible" action=instance-stop id=instance-event-00000000000000001 state=active not_before=`,
		`"simulated scheduled notice visible" action=instance-retirement id=e-2 state=canceled not_before=`,
		`"simulated asg notice visible" state=Terminated`,
		`"simulated spot notice visible" action=terminate notice_time=`,
	}
	if len(got) != len(want) {
		t.Fatalf("visible lines:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d: %s\nwant prefix %s", i, got[i], want[i])
		}
	}
}

func TestStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := startServer(t, ctx, Scenario{Faults: []Fault{{Path: SpotPath, Delay: time.Hour}}}, nil)
	c := &http.Client{}
	defer c.CloseIdleConnections()
	errc := make(chan error, 1)
	go func() {
		resp, _, err := get(t, c, s.URL(), SpotPath) // hangs in the fault until the server stops
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	eventually(t, "the request to hang", func() bool { return s.Stats().Faulted == 1 })
	cancel()
	if err := <-errc; err == nil {
		t.Error("a request hanging at shutdown got an answer")
	}
	if err := s.Close(); err != nil { // waits for the shutdown ctx started
		t.Error(err)
	}
	c.CloseIdleConnections()
	noServerGoroutines(t)
	if _, err := http.Get(s.URL() + SpotPath); err == nil {
		t.Error("still serving after ctx ended")
	}
}

func TestStartWithDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, err := Start(ctx, "127.0.0.1:0", Scenario{Spot: &SpotNotice{After: time.Hour}}, nil)
	if err == nil {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}
	noServerGoroutines(t)
}

func TestStartRefuses(t *testing.T) {
	if _, err := Start(context.Background(), "127.0.0.1:0", Scenario{Faults: []Fault{{Status: 42}}}, nil); err == nil ||
		!strings.Contains(err.Error(), "status 42") {
		t.Errorf("invalid scenario: %v", err)
	}
	if _, err := Start(context.Background(), "127.0.0.1:-1", Scenario{}, nil); err == nil {
		t.Error("bad address accepted")
	}
	noServerGoroutines(t)
}

func TestServerFaultReset(t *testing.T) {
	s := startServer(t, context.Background(), Scenario{Faults: []Fault{{Path: SpotPath, Reset: true}}}, nil)
	c := &http.Client{}
	defer c.CloseIdleConnections()
	if resp, _, err := get(t, c, s.URL(), SpotPath); err == nil {
		resp.Body.Close()
		t.Fatalf("reset fault answered %d", resp.StatusCode)
	}
	// net/http's client retries an idempotent request once on a reused
	// connection that breaks, hence as many resets as GETs.
	if st := s.Stats(); st.Resets < 1 || st.Resets != st.GETs[SpotPath] || st.TokensIssued != 1 || len(st.Statuses) != 1 {
		t.Errorf("stats %+v", st)
	}
	s.Close()
	noServerGoroutines(t)
}

func TestServerHangBoundedByClientTimeout(t *testing.T) {
	s := startServer(t, context.Background(), Scenario{Faults: []Fault{{Path: TokenPath, Delay: time.Hour}}}, nil)
	c := &http.Client{Timeout: 50 * time.Millisecond}
	defer c.CloseIdleConnections()
	_, _, err := get(t, c, s.URL(), SpotPath)
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("want a client timeout, got %v", err)
	}
	// The handler saw its request end and returned, before any Close.
	eventually(t, "the delayed handler to return", func() bool {
		for _, g := range serverGoroutines() {
			if strings.Contains(g, "simulator.wait") {
				return false
			}
		}
		return true
	})
	if st := s.Stats(); st.Faulted != 1 || st.TokenPUTs != 1 || len(st.Statuses) != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestServerDrip(t *testing.T) {
	s := startServer(t, context.Background(), Scenario{
		Spot:   &SpotNotice{},
		Faults: []Fault{{Path: SpotPath, Drip: true, DripEvery: time.Millisecond}},
	}, nil)
	c := &http.Client{}
	defer c.CloseIdleConnections()
	resp, _, err := get(t, c, s.URL(), SpotPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []byte
	buf := make([]byte, 64)
	reads := 0
	for {
		n, err := resp.Body.Read(buf)
		got = append(got, buf[:n]...)
		if n > 0 {
			reads++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !strings.HasPrefix(string(got), `{"action":"terminate","time":"`) || reads < len(got)/2 {
		t.Errorf("%d reads of %q", reads, got)
	}
}

func TestSDKClient(t *testing.T) {
	s := startServer(t, context.Background(), Scenario{
		Spot:      &SpotNotice{Action: "terminate"},
		Rebalance: &Delayed{After: time.Hour},
	}, nil)
	c := imds.New(imds.Options{Endpoint: s.URL(), ClientEnableState: imds.ClientEnabled})
	ctx := context.Background()

	out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: "spot/instance-action"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Content)
	out.Content.Close()
	if !strings.HasPrefix(string(body), `{"action":"terminate","time":"`) {
		t.Errorf("notice %s", body)
	}

	region, err := c.GetRegion(ctx, &imds.GetRegionInput{})
	if err != nil || region.Region != Region {
		t.Errorf("region %+v %v", region, err)
	}

	// Not announced yet: a 404 the SDK reports by status.
	_, err = c.GetMetadata(ctx, &imds.GetMetadataInput{Path: "events/recommendations/rebalance"})
	var se interface{ HTTPStatusCode() int }
	if !errors.As(err, &se) || se.HTTPStatusCode() != 404 {
		t.Errorf("rebalance before its time: %v", err)
	}
	if st := s.Stats(); st.TokensIssued != 1 || st.Unauthorized != 0 {
		t.Errorf("the SDK should reuse one token: %+v", st)
	}
}

func TestSDKClientRenewsToken(t *testing.T) {
	clk := newClock()
	h := newHandler(Scenario{Spot: &SpotNotice{}, TokenTTLMax: time.Second}, testStart, clk.now, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := imds.New(imds.Options{
		Endpoint:          srv.URL,
		ClientEnableState: imds.ClientEnabled,
		// The SDK's retryer without backoff, so that the retry after the
		// 401 does not wait up to a second.
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		}),
		DisableDefaultMaxBackoff: true,
	})
	ctx := context.Background()
	for i, at := range []time.Duration{0, 2 * time.Second} {
		// The SDK trusts its token for the echoed second; the simulator's
		// clock has moved past it, so the second call gets a 401, renews
		// and retries.
		clk.at(at)
		out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: "spot/instance-action"})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		out.Content.Close()
	}
	if st := h.snapshot(); st.TokensIssued != 2 || st.Unauthorized != 1 || st.GETs[SpotPath] != 3 {
		t.Errorf("stats %+v", st)
	}
}
