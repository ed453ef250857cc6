package interruption

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitLimit bounds every wait on a condition; it only bounds failure.
const waitLimit = 10 * time.Second

// tokenSecret is part of every token the fake hands out, so tests can
// check it never reaches a log.
const tokenSecret = "tok-SECRET-6f1c"

// Route statuses that are not HTTP statuses. hang makes the fake hold the
// request until the client gives up or the test ends; stall answers 200
// and a part of the body, then holds the rest back in the same way; reset
// closes the connection with a TCP reset instead of answering. stall and
// reset need a socket: a fake from newFake.
const (
	hang  = -1
	stall = -2
	reset = -3
)

// route answers the n-th GET (from 1) of one metadata path.
type route func(n int) (status int, body string)

func static(status int, body string) route {
	return func(int) (int, string) { return status, body }
}

// fakeIMDS is an IMDSv2-only fake: a token from PUT /latest/api/token is
// required on every GET, as on EC2.
type fakeIMDS struct {
	srv     *httptest.Server // nil for a fake served in-process
	url     string           // the endpoint to configure
	hc      *http.Client     // for Config.HTTPClient: nil, or the in-process transport
	release chan struct{}

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced after each request
	puts        int
	gets        map[string]int // by path below /latest/meta-data/
	unauth      int            // GETs answered 401
	valid       map[string]bool
	seq         int
	tokenTTL    string // the TTL header of token answers; "" means 21600
	noTTL       bool   // token answers lack the TTL header
	tokenStatus int    // when set, PUT answers this status
	hangPut     bool   // PUT hangs
	routes      map[string]route
	other       int // requests to anything else
	expireGets  int // the next this many GETs find every token expired (401)
	log         []fakeReq
}

// fakeReq is one request the fake answered, in the order they came.
type fakeReq struct {
	at     time.Time // when it arrived
	method string    // PUT (a token) or GET
	path   string    // of a GET, below /latest/meta-data/
	status int       // what the fake answered; hang when it held the request
}

func (r fakeReq) String() string {
	if r.method == http.MethodPut {
		return fmt.Sprintf("PUT token %d", r.status)
	}
	return fmt.Sprintf("GET %s %d", r.path, r.status)
}

func newFakeState() *fakeIMDS {
	return &fakeIMDS{
		release: make(chan struct{}),
		changed: make(chan struct{}),
		gets:    map[string]int{},
		valid:   map[string]bool{},
		routes:  map[string]route{},
	}
}

// newFake starts a fake on a loopback port.
func newFake(t *testing.T) *fakeIMDS {
	t.Helper()
	f := newFakeState()
	f.srv = httptest.NewServer(f)
	f.url = f.srv.URL
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.release) }) // runs before srv.Close
	return f
}

// newLocalFake returns a fake served in-process: the watcher's requests
// run the handler in its own goroutine, with no socket and no server
// goroutine, so that the fake works inside a synctest bubble, where the
// clock is fake and a schedule of many seconds takes no time. Hung
// requests end with their context, as over a socket.
func newLocalFake(t *testing.T) *fakeIMDS {
	t.Helper()
	f := newFakeState()
	f.url = "http://imds.test"
	f.hc = &http.Client{Transport: localTransport{f}}
	t.Cleanup(func() { close(f.release) })
	return f
}

// localTransport serves requests with a fake's handler.
type localTransport struct{ f *fakeIMDS }

func (lt localTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// As over a socket, the request got a connection: the classification
	// of a hang (token-timeout, not unreachable) depends on it.
	if tr := httptrace.ContextClientTrace(req.Context()); tr != nil && tr.GotConn != nil {
		tr.GotConn(httptrace.GotConnInfo{})
	}
	rec := httptest.NewRecorder()
	lt.f.ServeHTTP(rec, req)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

// note records a request; the fake is locked.
func (f *fakeIMDS) note(method, path string, status int) {
	f.log = append(f.log, fakeReq{at: time.Now(), method: method, path: path, status: status})
}

// getTimes returns when each GET of path arrived.
func (f *fakeIMDS) getTimes(path string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Time
	for _, r := range f.log {
		if r.method == http.MethodGet && r.path == path {
			out = append(out, r.at)
		}
	}
	return out
}

// requests returns the requests so far, one string each.
func (f *fakeIMDS) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.log {
		out = append(out, r.String())
	}
	return out
}

func (f *fakeIMDS) bump() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
		f.puts++
		f.bump()
		if f.hangPut {
			f.note(r.Method, "", hang)
			f.mu.Unlock()
			f.wait(r)
			return
		}
		defer f.mu.Unlock()
		if f.tokenStatus != 0 {
			f.note(r.Method, "", f.tokenStatus)
			w.WriteHeader(f.tokenStatus)
			return
		}
		if r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds") == "" {
			f.note(r.Method, "", http.StatusBadRequest)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.note(r.Method, "", http.StatusOK)
		f.seq++
		tok := fmt.Sprintf("%s-%d", tokenSecret, f.seq)
		f.valid[tok] = true
		ttl := f.tokenTTL
		if ttl == "" {
			ttl = "21600"
		}
		if !f.noTTL {
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", ttl)
		}
		fmt.Fprint(w, tok)
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, "/latest/meta-data/")
	if r.Method != http.MethodGet || !ok {
		f.other++
		f.bump()
		f.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.gets[path]++
	n := f.gets[path]
	f.bump()
	if f.tokenStatus == http.StatusForbidden {
		f.note(r.Method, path, http.StatusForbidden)
		f.mu.Unlock()
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if f.expireGets > 0 {
		f.expireGets--
		clear(f.valid)
	}
	if !f.valid[r.Header.Get("X-Aws-Ec2-Metadata-Token")] {
		f.unauth++
		f.note(r.Method, path, http.StatusUnauthorized)
		f.mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rt := f.routes[path]
	f.mu.Unlock()
	status, body := http.StatusNotFound, ""
	if rt != nil {
		status, body = rt(n)
	}
	f.mu.Lock()
	f.note(r.Method, path, status)
	f.mu.Unlock()
	switch status {
	case hang:
		f.wait(r)
		return
	case stall:
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, body[:len(body)/2])
		http.NewResponseController(w).Flush()
		f.wait(r)
		return
	case reset:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.(*net.TCPConn).SetLinger(0) // RST instead of FIN
			conn.Close()
		}
		return
	}
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func (f *fakeIMDS) wait(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-f.release:
	}
}

// set routes a metadata path; nil removes the route (404).
func (f *fakeIMDS) set(path string, rt route) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rt == nil {
		delete(f.routes, path)
		return
	}
	f.routes[path] = rt
}

// expire makes every token handed out so far invalid.
func (f *fakeIMDS) expire() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.valid)
}

func (f *fakeIMDS) update(fn func(f *fakeIMDS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeIMDS) read(fn func(f *fakeIMDS)) { f.update(fn) }

// await waits until cond (called with the fake locked) holds.
func (f *fakeIMDS) await(t *testing.T, what string, cond func(f *fakeIMDS) bool) {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	for {
		f.mu.Lock()
		ok, ch := cond(f), f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-limit.C:
			t.Fatalf("timed out waiting for the fake: %s", what)
		}
	}
}

// morePolls waits for at least n more GETs of path than now.
func (f *fakeIMDS) morePolls(t *testing.T, path string, n int) {
	t.Helper()
	var base int
	f.read(func(f *fakeIMDS) { base = f.gets[path] })
	f.await(t, fmt.Sprintf("%d more polls of %s", n, path), func(f *fakeIMDS) bool { return f.gets[path] >= base+n })
}

// logRecorder is a slog.Handler that keeps every record. It also checks
// the keys of each: a record must not carry a key twice, nor one of the
// handler's own keys (time, level, msg), which a JSON parser would
// confuse; the test fails at its end if one did.
type logRecorder struct {
	mu      sync.Mutex
	recs    []logRec
	badKeys []string
	changed chan struct{}
}

type logRec struct {
	level slog.Level
	msg   string
	attrs map[string]string
	text  string
}

type recHandler struct {
	r     *logRecorder
	attrs []slog.Attr
}

func newRecorder(t *testing.T) *logRecorder {
	r := &logRecorder{changed: make(chan struct{})}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, b := range r.badKeys {
			t.Errorf("log record with a clashing key: %s", b)
		}
	})
	return r
}

func (r *logRecorder) logger() *slog.Logger { return slog.New(&recHandler{r: r}) }

func (h *recHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recHandler) Handle(_ context.Context, rec slog.Record) error {
	lr := logRec{level: rec.Level, msg: rec.Message, attrs: map[string]string{}}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", rec.Level, rec.Message)
	var bad bool
	add := func(a slog.Attr) bool {
		v := a.Value.Resolve().String()
		switch _, dup := lr.attrs[a.Key]; {
		case dup, a.Key == slog.TimeKey, a.Key == slog.LevelKey, a.Key == slog.MessageKey:
			bad = true
		}
		lr.attrs[a.Key] = v
		fmt.Fprintf(&b, " %s=%q", a.Key, v)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	rec.Attrs(add)
	lr.text = b.String()
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	if bad {
		h.r.badKeys = append(h.r.badKeys, lr.text)
	}
	h.r.recs = append(h.r.recs, lr)
	close(h.r.changed)
	h.r.changed = make(chan struct{})
	return nil
}

func (h *recHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recHandler{r: h.r, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}

func (h *recHandler) WithGroup(string) slog.Handler { return h }

// find returns the records with this level and message.
func (r *logRecorder) find(level slog.Level, msg string) []logRec {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRec
	for _, rec := range r.recs {
		if rec.level == level && rec.msg == msg {
			out = append(out, rec)
		}
	}
	return out
}

// atLeast returns the records at level or above.
func (r *logRecorder) atLeast(level slog.Level) []logRec {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRec
	for _, rec := range r.recs {
		if rec.level >= level {
			out = append(out, rec)
		}
	}
	return out
}

func (r *logRecorder) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.recs {
		b.WriteString(rec.text)
		b.WriteByte('\n')
	}
	return b.String()
}

// await waits until at least n records with level and msg were logged, and
// returns them.
func (r *logRecorder) await(t *testing.T, level slog.Level, msg string, n int) []logRec {
	t.Helper()
	var recs []logRec
	r.waitFor(t, fmt.Sprintf("%d %v %q log lines", n, level, msg), func() bool {
		recs = r.find(level, msg)
		return len(recs) >= n
	})
	return recs
}

// waitFor waits until cond holds, checking it whenever a record is logged,
// and fails the test after waitLimit, naming what it waited for.
func (r *logRecorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-limit.C:
			t.Fatalf("timed out waiting for %s; log:\n%s", what, r.text())
		}
	}
}

func noEnv(string) string { return "" }

// testConfig watches f in On mode with fast schedules.
func testConfig(f *fakeIMDS, lr *logRecorder, kinds ...Kind) Config {
	return Config{
		Mode:              On,
		Endpoint:          f.url,
		HTTPClient:        f.hc,
		Kinds:             kinds,
		PollInterval:      5 * time.Millisecond,
		Getenv:            noEnv,
		Log:               lr.logger(),
		requestTimeout:    time.Second, // the default; tests of hangs set less
		slowInterval:      5 * time.Millisecond,
		scheduledInterval: 5 * time.Millisecond,
		reprobeInterval:   5 * time.Millisecond,
		spotGap:           time.Second + 40*time.Millisecond, // spot backoff capped at 40ms
		maxBackoff:        40 * time.Millisecond,
	}
}

// defaultConfig watches f in On mode with every schedule at its default,
// for tests in a synctest bubble, where they take no real time.
func defaultConfig(f *fakeIMDS, lr *logRecorder, kinds ...Kind) Config {
	return Config{
		Mode:       On,
		Endpoint:   f.url,
		HTTPClient: f.hc,
		Kinds:      kinds,
		Getenv:     noEnv,
		Log:        lr.logger(),
	}
}

// start runs Watch until the test ends, and then checks that the channel
// is closed.
func start(t *testing.T, cfg Config) <-chan Notice {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := Watch(ctx, cfg)
	t.Cleanup(func() {
		cancel()
		awaitClosed(t, ch)
	})
	return ch
}

func awaitClosed(t *testing.T, ch <-chan Notice) {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-limit.C:
			t.Fatal("notice channel not closed after cancel")
		}
	}
}

func recv(t *testing.T, ch <-chan Notice) Notice {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	select {
	case n, ok := <-ch:
		if !ok {
			t.Fatal("notice channel closed")
		}
		return n
	case <-limit.C:
		t.Fatal("timed out waiting for a notice")
	}
	panic("unreachable")
}

// none checks that no notice is waiting on ch.
func none(t *testing.T, ch <-chan Notice) {
	t.Helper()
	select {
	case n, ok := <-ch:
		if ok {
			t.Fatalf("unexpected notice %+v", n)
		}
		t.Fatal("notice channel closed early")
	default:
	}
}

func spotBody(action string, tm time.Time) string {
	return fmt.Sprintf(`{"action":%q,"time":%q}`, action, tm.UTC().Format(time.RFC3339))
}
