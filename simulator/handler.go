package simulator

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

const (
	metaPrefix      = "/latest/meta-data/"
	instanceIDPath  = metaPrefix + "instance-id"
	regionPath      = metaPrefix + "placement/region"
	terminationPath = metaPrefix + "spot/termination-time"
	identityPath    = "/latest/dynamic/instance-identity/document"

	tokenHeader = "X-Aws-Ec2-Metadata-Token"
	ttlHeader   = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	maxTTL      = 21600 // seconds: IMDS grants 1 s to 6 h

	spotTimeLayout      = "2006-01-02T15:04:05Z"
	scheduledTimeLayout = "2 Jan 2006 15:04:05 GMT"

	// maxStatsPaths bounds Stats.GETs, so that a client (or a fuzzer)
	// asking for endless distinct paths cannot grow memory; later paths
	// are counted under OtherPaths.
	maxStatsPaths = 256
)

// OtherPaths is the key of [Stats.GETs] that counts the GETs of paths seen
// after the first 256 distinct ones.
const OtherPaths = "(other)"

// Stats counts what a simulator has been asked and how it answered.
type Stats struct {
	Requests     int            // every request received
	TokenPUTs    int            // PUTs to the token path, granted or not
	TokensIssued int            // tokens granted
	GETs         map[string]int // GETs by path, unknown paths included
	Statuses     map[int]int    // answers by status code, faults included
	Unauthorized int            // 401 answers (Statuses[401])
	Faulted      int            // requests a fault acted on
	Resets       int            // connections closed without an answer
}

// handler is the http.Handler behind NewHandler and Start.
type handler struct {
	sc    Scenario // a clone: never shared with the caller
	start time.Time
	now   func() time.Time
	log   *slog.Logger
	key   [32]byte // signs tokens, so that they need no table

	mu    sync.Mutex
	stats Stats
}

// NewHandler returns an http.Handler that serves sc as if the instance had
// started at start, reading the clock through now (nil means time.Now), so
// that a test can move time instead of sleeping. Waits and drips of faults
// use the real clock. It logs nothing; a Scenario that Validate refuses is
// served as well as it can be, never with a panic.
func NewHandler(sc Scenario, start time.Time, now func() time.Time) http.Handler {
	return newHandler(sc, start, now, nil)
}

func newHandler(sc Scenario, start time.Time, now func() time.Time, log *slog.Logger) *handler {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{sc: sc.clone(), start: start, now: now, log: log}
	h.stats.GETs = map[string]int{}
	h.stats.Statuses = map[int]int{}
	rand.Read(h.key[:]) // never fails (crypto/rand since Go 1.24)
	return h
}

// snapshot returns a copy of the counters.
func (h *handler) snapshot() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.stats
	s.GETs = maps.Clone(s.GETs)
	s.Statuses = maps.Clone(s.Statuses)
	return s
}

// count updates the counters with f, under the lock.
func (h *handler) count(f func(*Stats)) {
	h.mu.Lock()
	f(&h.stats)
	h.mu.Unlock()
}

// reply is an answer before it is written.
type reply struct {
	status int
	body   string
	allow  string // Allow header of a 405
	ttl    string // TTL header echoed with a token
}

// ServeHTTP answers one request: faults first, then the service.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	h.count(func(s *Stats) {
		s.Requests++
		switch {
		case r.Method == http.MethodPut && path == TokenPath:
			s.TokenPUTs++
		case r.Method == http.MethodGet:
			if _, ok := s.GETs[path]; ok || len(s.GETs) < maxStatsPaths {
				s.GETs[path]++
			} else {
				s.GETs[OtherPaths]++
			}
		}
	})

	var f *Fault
	elapsed := h.now().Sub(h.start)
	for i := range h.sc.Faults {
		if h.sc.Faults[i].active(path, elapsed) {
			f = &h.sc.Faults[i]
			break
		}
	}
	if f == nil {
		h.write(w, r, h.answer(r), 0)
		return
	}
	h.count(func(s *Stats) { s.Faulted++ })
	if !wait(r.Context(), f.Delay) {
		h.drop(w, r, false)
		return
	}
	if f.Reset {
		h.drop(w, r, true)
		return
	}
	rep := reply{status: f.Status, body: f.Body}
	if !f.replaces() {
		rep = h.answer(r)
	} else if rep.status == 0 {
		rep.status = http.StatusOK
	}
	var drip time.Duration
	if f.Drip {
		drip = f.DripEvery
	}
	h.write(w, r, rep, drip)
}

// answer is what the service says to r, now.
func (h *handler) answer(r *http.Request) reply {
	now := h.now()
	if r.URL.Path == TokenPath {
		if r.Method != http.MethodPut {
			return reply{status: http.StatusMethodNotAllowed, allow: http.MethodPut}
		}
		return h.grant(r, now)
	}
	if r.Method != http.MethodGet {
		return reply{status: http.StatusMethodNotAllowed, allow: http.MethodGet}
	}
	if !h.valid(r.Header.Get(tokenHeader), now) {
		return reply{status: http.StatusUnauthorized}
	}
	body, ok := h.lookup(r.URL.Path, now)
	if !ok {
		return reply{status: http.StatusNotFound}
	}
	return reply{status: http.StatusOK, body: body}
}

// grant answers a token PUT.
func (h *handler) grant(r *http.Request, now time.Time) reply {
	if len(r.Header.Values("X-Forwarded-For")) > 0 {
		// IMDS refuses token requests that went through a proxy.
		return reply{status: http.StatusForbidden}
	}
	secs, err := strconv.ParseUint(r.Header.Get(ttlHeader), 10, 32)
	if err != nil || secs < 1 || secs > maxTTL {
		return reply{status: http.StatusBadRequest}
	}
	ttl := time.Duration(secs) * time.Second
	if m := h.sc.TokenTTLMax; m > 0 && ttl > m {
		ttl = m
	}
	// The header has whole seconds: a sub-second cap is announced as 1 s,
	// so the token dies before the client expects and renewal on 401 is
	// exercised.
	echo := (ttl + time.Second - 1) / time.Second
	h.count(func(s *Stats) { s.TokensIssued++ })
	return reply{status: http.StatusOK, body: h.issue(now.Add(ttl)), ttl: strconv.FormatInt(int64(echo), 10)}
}

// A token is base64url(expiry | nonce | mac): expiry is nanoseconds after
// the handler's start, mac the first 16 bytes of HMAC-SHA256 of the rest
// under h.key. Tokens need no table, so any number can be issued in a long
// soak without memory growth.
const (
	tokenData = 16
	tokenLen  = tokenData + 16
)

func (h *handler) issue(expires time.Time) string {
	var b [tokenLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(expires.Sub(h.start)))
	rand.Read(b[8:tokenData])
	copy(b[tokenData:], h.mac(b[:tokenData]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (h *handler) valid(tok string, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != tokenLen || !hmac.Equal(b[tokenData:], h.mac(b[:tokenData])) {
		return false
	}
	return now.Sub(h.start) < time.Duration(binary.BigEndian.Uint64(b[:8]))
}

func (h *handler) mac(data []byte) []byte {
	m := hmac.New(sha256.New, h.key[:])
	m.Write(data)
	return m.Sum(nil)[:tokenLen-tokenData]
}

// lookup returns the body served at path at now, or false for a 404.
func (h *handler) lookup(path string, now time.Time) (string, bool) {
	elapsed := now.Sub(h.start)
	switch path {
	case instanceIDPath:
		return InstanceID, true
	case regionPath:
		return Region, true
	case identityPath:
		// What the SDK's GetRegion and GetInstanceIdentityDocument read.
		return `{"accountId":"000000000000","availabilityZone":"` + Region + `a","instanceId":"` + InstanceID +
			`","instanceType":"m5.large","region":"` + Region + `","version":"2017-09-30"}`, true
	case SpotPath, terminationPath:
		sp := h.sc.Spot
		if sp == nil || elapsed < sp.After {
			return "", false
		}
		t := h.spotTime(now).UTC().Format(spotTimeLayout)
		if path == terminationPath {
			return t, true
		}
		return marshal(struct {
			Action string `json:"action"`
			Time   string `json:"time"`
		}{sp.Action, t}), true
	case ASGPath:
		if a := h.sc.ASG; a != nil && elapsed >= a.After {
			return "Terminated", true
		}
		return "InService", true
	case RebalancePath:
		rb := h.sc.Rebalance
		if rb == nil || elapsed < rb.After {
			return "", false
		}
		return marshal(struct {
			NoticeTime string `json:"noticeTime"`
		}{h.start.Add(rb.After).UTC().Format(spotTimeLayout)}), true
	case ScheduledPath:
		type event struct {
			NotBefore   string
			Code        string
			Description string
			EventID     string `json:"EventId"`
			NotAfter    string `json:",omitempty"`
			State       string
		}
		list := []event{}
		for _, ev := range h.sc.Scheduled {
			if elapsed < ev.After {
				continue
			}
			nb, na := ev.NotBefore, ev.NotAfter
			if nb.IsZero() {
				nb = h.start.Add(ev.StartsIn)
			}
			if na.IsZero() && ev.Lasts > 0 {
				na = nb.Add(ev.Lasts)
			}
			e := event{
				NotBefore:   nb.UTC().Format(scheduledTimeLayout),
				Code:        ev.Code,
				Description: ev.Description,
				EventID:     ev.EventID,
				State:       ev.State,
			}
			if !na.IsZero() {
				e.NotAfter = na.UTC().Format(scheduledTimeLayout)
			}
			list = append(list, e)
		}
		return marshal(list), true
	}
	return "", false
}

// spotTime is the time the Spot notice names, asked at now.
func (h *handler) spotTime(now time.Time) time.Time {
	sp := h.sc.Spot
	switch {
	case sp.Time != nil:
		return *sp.Time
	case sp.MovingTime:
		return now.Add(sp.Lead)
	default:
		return h.start.Add(sp.After + sp.Lead)
	}
}

// marshal encodes v, which holds only strings and cannot fail to encode.
func marshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// write sends rep, one byte every drip when drip > 0.
func (h *handler) write(w http.ResponseWriter, r *http.Request, rep reply, drip time.Duration) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain")
	if rep.status != http.StatusNoContent && rep.status != http.StatusNotModified {
		hd.Set("Content-Length", strconv.Itoa(len(rep.body)))
	}
	if rep.allow != "" {
		hd.Set("Allow", rep.allow)
	}
	if rep.ttl != "" {
		hd.Set(ttlHeader, rep.ttl)
	}
	h.count(func(s *Stats) {
		s.Statuses[rep.status]++
		if rep.status == http.StatusUnauthorized {
			s.Unauthorized++
		}
	})
	h.log.Debug("imds request", "method", r.Method, "path", r.URL.Path, "status", rep.status)
	w.WriteHeader(rep.status)
	if drip <= 0 {
		io.WriteString(w, rep.body)
		return
	}
	rc := http.NewResponseController(w)
	for i := range len(rep.body) {
		if !wait(r.Context(), drip) {
			h.drop(w, r, false)
			return
		}
		if _, err := io.WriteString(w, rep.body[i:i+1]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return
		}
	}
}

// drop closes the request's connection without (the rest of) an answer:
// for a Reset fault, with a TCP reset, as a crashed peer would; for a
// request whose context ended during a delay or drip (the client gave up,
// or the server is closing), so that net/http does not complete the answer
// with an empty 200. Where the connection cannot be taken over (a
// ResponseRecorder, HTTP/2), nothing more is written.
func (h *handler) drop(w http.ResponseWriter, r *http.Request, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.log.Debug("imds connection not dropped", "path", r.URL.Path, "err", err)
		return
	}
	if reset {
		// Counted before the close, which is what the client sees.
		h.count(func(s *Stats) { s.Resets++ })
		h.log.Debug("imds request reset", "method", r.Method, "path", r.URL.Path)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST instead of FIN
		}
	} else {
		h.log.Debug("imds request abandoned", "method", r.Method, "path", r.URL.Path)
	}
	conn.Close()
}

// wait returns after d, or false at once when ctx ends first.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
