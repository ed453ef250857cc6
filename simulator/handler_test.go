package simulator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// testStart is a single-digit day, to check that scheduled dates do not pad
// the day.
var testStart = time.Date(2024, time.March, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable clock for NewHandler.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: testStart} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// at sets the clock to d after testStart.
func (c *clock) at(d time.Duration) {
	c.mu.Lock()
	c.t = testStart.Add(d)
	c.mu.Unlock()
}

// fixture is a handler on a fake clock.
type fixture struct {
	t   *testing.T
	h   *handler
	clk *clock
}

func newFixture(t *testing.T, sc Scenario) *fixture {
	t.Helper()
	clk := newClock()
	return &fixture{t: t, h: newHandler(sc, testStart, clk.now, nil), clk: clk}
}

// do serves one request; hdr holds header pairs.
func (f *fixture) do(method, path string, hdr ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

// token gets a token asking for ttl seconds.
func (f *fixture) token(ttl string) string {
	f.t.Helper()
	rec := f.do(http.MethodPut, TokenPath, ttlHeader, ttl)
	if rec.Code != http.StatusOK || rec.Body.Len() == 0 {
		f.t.Fatalf("token PUT: status %d body %q", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// get GETs path with a fresh token.
func (f *fixture) get(path string) (int, string) {
	f.t.Helper()
	rec := f.do(http.MethodGet, path, tokenHeader, f.token("21600"))
	return rec.Code, rec.Body.String()
}

func (f *fixture) want(path string, code int, body string) {
	f.t.Helper()
	gotCode, gotBody := f.get(path)
	if gotCode != code || gotBody != body {
		f.t.Errorf("GET %s: got %d %q, want %d %q", path, gotCode, gotBody, code, body)
	}
}

func TestTokenRequest(t *testing.T) {
	f := newFixture(t, Scenario{})
	for _, tc := range []struct {
		name string
		hdr  []string
		code int
		echo string
	}{
		{"ttl missing", nil, 400, ""},
		{"ttl zero", []string{ttlHeader, "0"}, 400, ""},
		{"ttl above 6h", []string{ttlHeader, "21601"}, 400, ""},
		{"ttl negative", []string{ttlHeader, "-1"}, 400, ""},
		{"ttl signed", []string{ttlHeader, "+5"}, 400, ""},
		{"ttl not a number", []string{ttlHeader, "60s"}, 400, ""},
		{"ttl huge", []string{ttlHeader, "99999999999999999999"}, 400, ""},
		{"ttl 1s", []string{ttlHeader, "1"}, 200, "1"},
		{"ttl 6h", []string{ttlHeader, "21600"}, 200, "21600"},
		{"forwarded", []string{ttlHeader, "60", "X-Forwarded-For", "10.0.0.1"}, 403, ""},
		{"forwarded without ttl", []string{"X-Forwarded-For", "10.0.0.1"}, 403, ""},
	} {
		rec := f.do(http.MethodPut, TokenPath, tc.hdr...)
		if rec.Code != tc.code || rec.Header().Get(ttlHeader) != tc.echo {
			t.Errorf("%s: got %d ttl %q, want %d ttl %q", tc.name, rec.Code, rec.Header().Get(ttlHeader), tc.code, tc.echo)
		}
		if tc.code == 200 && rec.Body.Len() < 20 {
			t.Errorf("%s: short token %q", tc.name, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "text/plain" {
			t.Errorf("%s: content type %q", tc.name, ct)
		}
	}
	st := f.h.snapshot()
	if st.TokenPUTs != 11 || st.TokensIssued != 2 || st.Statuses[400] != 7 || st.Statuses[403] != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestTokenRequired(t *testing.T) {
	f := newFixture(t, Scenario{Spot: &SpotNotice{}})
	other := newFixture(t, Scenario{}).token("60") // signed with another key
	good := f.token("60")
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	raw[7]++ // a later expiry, with the old signature
	tampered := base64.RawURLEncoding.EncodeToString(raw)
	for _, tc := range []struct {
		name   string
		method string
		path   string
		hdr    []string
		code   int
		allow  string
	}{
		{"no token", "GET", SpotPath, nil, 401, ""},
		{"garbage token", "GET", SpotPath, []string{tokenHeader, "not-a-token"}, 401, ""},
		{"other server's token", "GET", SpotPath, []string{tokenHeader, other}, 401, ""},
		{"tampered token", "GET", SpotPath, []string{tokenHeader, tampered}, 401, ""},
		{"unknown path without token", "GET", "/latest/meta-data/nope", nil, 401, ""},
		{"good token", "GET", SpotPath, []string{tokenHeader, good}, 200, ""},
		{"unknown path", "GET", "/latest/meta-data/nope", []string{tokenHeader, good}, 404, ""},
		{"root", "GET", "/", []string{tokenHeader, good}, 404, ""},
		{"GET token", "GET", TokenPath, []string{ttlHeader, "60"}, 405, "PUT"},
		{"POST token", "POST", TokenPath, []string{ttlHeader, "60"}, 405, "PUT"},
		{"PUT metadata", "PUT", SpotPath, []string{tokenHeader, good}, 405, "GET"},
		{"HEAD metadata", "HEAD", SpotPath, []string{tokenHeader, good}, 405, "GET"},
	} {
		rec := f.do(tc.method, tc.path, tc.hdr...)
		if rec.Code != tc.code || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s: got %d allow %q, want %d allow %q", tc.name, rec.Code, rec.Header().Get("Allow"), tc.code, tc.allow)
		}
	}
	if st := f.h.snapshot(); st.Unauthorized != 5 || st.GETs[SpotPath] != 5 || st.Requests != 13 {
		t.Errorf("stats %+v", st)
	}
	f.want("/latest/meta-data/instance-id", 200, InstanceID)
	f.want("/latest/meta-data/placement/region", 200, Region)
}

func TestTokenExpiry(t *testing.T) {
	f := newFixture(t, Scenario{TokenTTLMax: time.Second})
	rec := f.do(http.MethodPut, TokenPath, ttlHeader, "21600")
	if got := rec.Header().Get(ttlHeader); got != "1" {
		t.Fatalf("capped ttl echoed as %q, want 1", got)
	}
	tok := rec.Body.String()
	for _, tc := range []struct {
		at   time.Duration
		code int
	}{{0, 200}, {999 * time.Millisecond, 200}, {time.Second, 401}, {time.Hour, 401}} {
		f.clk.at(tc.at)
		if rec := f.do(http.MethodGet, "/latest/meta-data/instance-id", tokenHeader, tok); rec.Code != tc.code {
			t.Errorf("at %v: got %d, want %d", tc.at, rec.Code, tc.code)
		}
	}
	// A token asked for less than the cap keeps its own TTL.
	f.clk.at(0)
	tok = f.do(http.MethodPut, TokenPath, ttlHeader, "1").Body.String()
	f.clk.at(999 * time.Millisecond)
	if rec := f.do(http.MethodGet, "/latest/meta-data/instance-id", tokenHeader, tok); rec.Code != 200 {
		t.Errorf("1 s token at 999ms: %d", rec.Code)
	}

	// A sub-second cap is announced as 1 s: the token dies before the
	// client expects, which is what renewal tests need.
	f = newFixture(t, Scenario{TokenTTLMax: 250 * time.Millisecond})
	rec = f.do(http.MethodPut, TokenPath, ttlHeader, "60")
	tok = rec.Body.String()
	if got := rec.Header().Get(ttlHeader); got != "1" {
		t.Errorf("sub-second cap echoed as %q, want 1", got)
	}
	f.clk.at(250 * time.Millisecond)
	if rec := f.do(http.MethodGet, "/latest/meta-data/instance-id", tokenHeader, tok); rec.Code != 401 {
		t.Errorf("at the cap: got %d, want 401", rec.Code)
	}
}

func spotBody(action string, t time.Time) string {
	return `{"action":"` + action + `","time":"` + t.UTC().Format(time.RFC3339) + `"}`
}

func TestSpotNoticeAfterDelay(t *testing.T) {
	f := newFixture(t, Scenario{Spot: &SpotNotice{After: 5 * time.Second}})
	f.clk.at(5*time.Second - time.Nanosecond)
	f.want(SpotPath, 404, "")
	f.want(terminationPath, 404, "")
	want := testStart.Add(5*time.Second + 2*time.Minute)
	for _, d := range []time.Duration{5 * time.Second, time.Hour} {
		f.clk.at(d)
		f.want(SpotPath, 200, spotBody("terminate", want))
		f.want(terminationPath, 200, want.Format(time.RFC3339))
	}
}

func TestSpotNoticeOptions(t *testing.T) {
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		sp   SpotNotice
		at   time.Duration
		want string
	}{
		{"stop lead", SpotNotice{After: time.Second, Action: "stop", Lead: 30 * time.Second}, time.Minute,
			spotBody("stop", testStart.Add(31*time.Second))},
		{"hibernate", SpotNotice{Action: "hibernate"}, 0, spotBody("hibernate", testStart.Add(2*time.Minute))},
		{"negative lead", SpotNotice{Lead: -time.Minute}, 0, spotBody("terminate", testStart.Add(-time.Minute))},
		{"moving", SpotNotice{MovingTime: true}, 10 * time.Second, spotBody("terminate", testStart.Add(10*time.Second+2*time.Minute))},
		{"moving later", SpotNotice{MovingTime: true, Lead: time.Second}, time.Hour, spotBody("terminate", testStart.Add(time.Hour+time.Second))},
		{"explicit past", SpotNotice{Time: &past}, time.Hour, spotBody("terminate", past)},
		{"odd action", SpotNotice{Action: `re"boot`}, 0, `{"action":"re\"boot","time":"` + testStart.Add(2*time.Minute).Format(time.RFC3339) + `"}`},
	} {
		f := newFixture(t, Scenario{Spot: &tc.sp})
		f.clk.at(tc.at)
		if code, body := f.get(SpotPath); code != 200 || body != tc.want {
			t.Errorf("%s: got %d %s, want %s", tc.name, code, body, tc.want)
		}
	}
}

func TestScenarioIsCopied(t *testing.T) {
	sc := Scenario{Spot: &SpotNotice{Action: "stop"}, Faults: []Fault{{Path: "/x", Status: 500}}}
	f := newFixture(t, sc)
	sc.Spot.Action = "hibernate"
	sc.Faults[0].Path = SpotPath
	if code, body := f.get(SpotPath); code != 200 || !strings.Contains(body, `"stop"`) {
		t.Errorf("caller's later edits leaked into the handler: %d %s", code, body)
	}
}

func TestASG(t *testing.T) {
	f := newFixture(t, Scenario{})
	f.clk.at(1000 * time.Hour)
	f.want(ASGPath, 200, "InService")

	f = newFixture(t, Scenario{ASG: &Delayed{After: 3 * time.Second}})
	f.clk.at(3*time.Second - 1)
	f.want(ASGPath, 200, "InService")
	f.clk.at(3 * time.Second)
	f.want(ASGPath, 200, "Terminated")
}

func TestRebalance(t *testing.T) {
	f := newFixture(t, Scenario{})
	f.clk.at(1000 * time.Hour)
	f.want(RebalancePath, 404, "")

	f = newFixture(t, Scenario{Rebalance: &Delayed{After: time.Second}})
	f.clk.at(time.Second - 1)
	f.want(RebalancePath, 404, "")
	f.clk.at(time.Minute)
	f.want(RebalancePath, 200, `{"noticeTime":"2024-03-02T03:04:06Z"}`)
}

func TestScheduled(t *testing.T) {
	f := newFixture(t, Scenario{})
	f.want(ScheduledPath, 200, "[]")

	nb := time.Date(2019, 1, 21, 9, 0, 43, 0, time.UTC)
	f = newFixture(t, Scenario{Scheduled: []ScheduledEvent{
		{Code: "instance-stop", StartsIn: 10 * time.Minute},
		{Code: "system-reboot", State: "completed", EventID: "instance-event-0d59937288b749b32",
			Description: "scheduled reboot", NotBefore: nb, Lasts: 16*time.Minute + 40*time.Second},
		{Code: "instance-retirement", StartsIn: -time.Hour, NotAfter: nb, After: 5 * time.Second},
	}})
	f.want(ScheduledPath, 200, `[`+
		`{"NotBefore":"2 Mar 2024 03:14:05 GMT","Code":"instance-stop","Description":"simulated instance-stop","EventId":"instance-event-00000000000000001","State":"active"},`+
		`{"NotBefore":"21 Jan 2019 09:00:43 GMT","Code":"system-reboot","Description":"scheduled reboot","EventId":"instance-event-0d59937288b749b32","NotAfter":"21 Jan 2019 09:17:23 GMT","State":"completed"}`+
		`]`)

	f.clk.at(5 * time.Second)
	_, body := f.get(ScheduledPath)
	var evs []map[string]string
	if err := json.Unmarshal([]byte(body), &evs); err != nil || len(evs) != 3 {
		t.Fatalf("at 5s: %v %s", err, body)
	}
	for _, ev := range evs {
		for _, k := range []string{"NotBefore", "NotAfter"} {
			if v, ok := ev[k]; ok {
				if _, err := time.Parse(scheduledTimeLayout, v); err != nil {
					t.Errorf("%s %q: %v", k, v, err)
				}
			}
		}
	}
	if ev := evs[2]; ev["NotBefore"] != "2 Mar 2024 02:04:05 GMT" || ev["NotAfter"] != "21 Jan 2019 09:00:43 GMT" {
		t.Errorf("third event %v", ev)
	}
}

func TestFaultStatusAndWindow(t *testing.T) {
	f := newFixture(t, Scenario{
		Spot: &SpotNotice{},
		Faults: []Fault{
			{Path: SpotPath, Status: 500, Until: 5 * time.Second},
			{Path: SpotPath, Status: 404, From: 10 * time.Second, Until: 20 * time.Second},
			{Path: SpotPath, Status: 429, From: 10 * time.Second}, // shadowed until 20s
			{Path: TokenPath, Status: 403, From: time.Hour},
		},
	})
	notice := spotBody("terminate", testStart.Add(2*time.Minute))
	for _, tc := range []struct {
		at   time.Duration
		code int
		body string
	}{
		{0, 500, ""},
		{5*time.Second - 1, 500, ""},
		{5 * time.Second, 200, notice},
		{10 * time.Second, 404, ""}, // the notice vanishes…
		{20 * time.Second, 429, ""}, // …and the later fault takes over
	} {
		f.clk.at(tc.at)
		f.want(SpotPath, tc.code, tc.body)
	}
	// A status fault answers whatever the token, unlike the service.
	f.clk.at(0)
	if rec := f.do(http.MethodGet, SpotPath); rec.Code != 500 {
		t.Errorf("fault without token: %d", rec.Code)
	}
	f.clk.at(time.Hour)
	if rec := f.do(http.MethodPut, TokenPath, ttlHeader, "60"); rec.Code != 403 {
		t.Errorf("token fault: %d", rec.Code)
	}
	if st := f.h.snapshot(); st.Faulted != 6 || st.Statuses[500] != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestFaultBody(t *testing.T) {
	f := newFixture(t, Scenario{Faults: []Fault{
		{Path: SpotPath, Body: `{"action":`},
		{Path: RebalancePath, Status: 503, Body: "busy"},
		{Path: ASGPath, Status: 200},
	}})
	f.want(SpotPath, 200, `{"action":`)
	f.want(RebalancePath, 503, "busy")
	f.want(ASGPath, 200, "")
}

func TestFaultDelayEndsWithRequest(t *testing.T) {
	f := newFixture(t, Scenario{Faults: []Fault{{Path: SpotPath, Delay: time.Hour}}})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, SpotPath, nil)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.h.ServeHTTP(rec, req)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a delayed answer outlived its request")
	}
	if len(rec.Result().Header) != 0 || rec.Body.Len() != 0 {
		t.Errorf("wrote after the request ended: %v %q", rec.Result().Header, rec.Body)
	}
	if st := f.h.snapshot(); st.Faulted != 1 || len(st.Statuses) != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestFaultDelayThenAnswer(t *testing.T) {
	f := newFixture(t, Scenario{Faults: []Fault{{Path: "/latest/meta-data/", Delay: time.Millisecond}}})
	f.want("/latest/meta-data/instance-id", 200, InstanceID)
	if rec := f.do(http.MethodGet, SpotPath); rec.Code != 401 {
		t.Errorf("a delay-only fault must not skip the token check: %d", rec.Code)
	}
}

// writes records each Write separately.
type writes struct {
	httptest.ResponseRecorder
	chunks []string
}

func (w *writes) Write(b []byte) (int, error) {
	w.chunks = append(w.chunks, string(b))
	return w.ResponseRecorder.Write(b)
}

func (w *writes) WriteString(s string) (int, error) {
	w.chunks = append(w.chunks, s)
	return w.ResponseRecorder.WriteString(s)
}

func TestFaultDrip(t *testing.T) {
	f := newFixture(t, Scenario{Faults: []Fault{
		{Path: SpotPath, Body: `{"ac`, Drip: true, DripEvery: time.Microsecond},
		{Path: "/latest/meta-data/", Drip: true, DripEvery: time.Microsecond},
	}})
	for path, want := range map[string]string{SpotPath: `{"ac`, "/latest/meta-data/placement/region": Region} {
		w := &writes{ResponseRecorder: *httptest.NewRecorder()}
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set(tokenHeader, f.token("60"))
		f.h.ServeHTTP(w, req)
		if w.Body.String() != want || len(w.chunks) != len(want) || !w.Flushed {
			t.Errorf("%s: body %q in %d writes (flushed %v), want %q byte by byte", path, w.Body, len(w.chunks), w.Flushed, want)
		}
	}
}

func TestFaultResetWithoutConnection(t *testing.T) {
	// A recorder cannot be hijacked: nothing is written and nothing panics.
	f := newFixture(t, Scenario{Faults: []Fault{{Reset: true}}})
	rec := f.do(http.MethodGet, SpotPath)
	if rec.Body.Len() != 0 {
		t.Errorf("reset wrote %q", rec.Body)
	}
	if st := f.h.snapshot(); st.Faulted != 1 || st.Resets != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestInvalidScenarioServedSafely(t *testing.T) {
	// Validate refuses these; NewHandler must still never panic.
	sc := Scenario{
		Spot:   &SpotNotice{After: -time.Second},
		Faults: []Fault{{Path: SpotPath, Status: 42}, {Path: ASGPath, Status: 1000, Delay: -time.Second}, {Path: RebalancePath, Drip: true, DripEvery: -1, Body: "x"}},
	}
	if sc.Validate() == nil {
		t.Fatal("Validate accepted an invalid scenario")
	}
	h := NewHandler(sc, testStart, nil)
	for _, p := range []string{SpotPath, ASGPath, RebalancePath} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != 500 && rec.Code != 200 {
			t.Errorf("%s: %d", p, rec.Code)
		}
	}
}

func TestStatsGETsBounded(t *testing.T) {
	f := newFixture(t, Scenario{})
	for i := range maxStatsPaths + 10 {
		f.do(http.MethodGet, "/p/"+url.PathEscape(time.Duration(i).String()))
	}
	st := f.h.snapshot()
	if len(st.GETs) != maxStatsPaths+1 || st.GETs[OtherPaths] != 10 {
		t.Errorf("%d paths, %d other", len(st.GETs), st.GETs[OtherPaths])
	}
}

func FuzzHandler(f *testing.F) {
	f.Add("GET", SpotPath, "", "", "", "")
	f.Add("PUT", TokenPath, "21600", "", "", "")
	f.Add("PUT", TokenPath, "1", "X-Forwarded-For", "1.2.3.4", "")
	f.Add("GET", ScheduledPath, "", tokenHeader, "AAAA", "")
	f.Add("DELETE", "/latest/meta-data/events/x", "", "", "", "")
	f.Add("GET", "/reset/x", "", "", "", "x")
	f.Add("\x00", "\xff/../..//", "0x10", "\n", "\r", "")
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	sc := Scenario{
		Spot:        &SpotNotice{Action: "stop", Time: &past},
		ASG:         &Delayed{},
		Rebalance:   &Delayed{},
		Scheduled:   []ScheduledEvent{{Code: "instance-stop", Lasts: time.Hour}},
		TokenTTLMax: time.Hour,
		Faults: []Fault{
			{Path: "/reset", Reset: true},
			{Path: "/latest/meta-data/events/", Drip: true, DripEvery: time.Nanosecond, Body: "[{"},
		},
	}
	h := newHandler(sc, testStart, func() time.Time { return testStart.Add(time.Minute) }, nil)
	tok := h.issue(testStart.Add(time.Hour))
	f.Fuzz(func(t *testing.T, method, path, ttl, name, value, token string) {
		if token == "x" {
			token = tok
		}
		req := &http.Request{
			Method: method,
			URL:    &url.URL{Path: path},
			Header: http.Header{ttlHeader: {ttl}, name: {value}, tokenHeader: {token}},
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 401, 403, 404, 405:
		default:
			t.Errorf("%q %q: status %d", method, path, rec.Code)
		}
	})
}
