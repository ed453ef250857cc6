package interruption

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// Defaults for the zero values of Config and its test seams.
const (
	defaultPollInterval      = 2 * time.Second
	defaultStaleAfter        = 5 * time.Minute
	defaultRequestTimeout    = time.Second // also the maximum
	defaultSlowInterval      = 5 * time.Second
	defaultScheduledInterval = 30 * time.Second
	defaultReprobeInterval   = 3 * time.Minute
	defaultSpotGap           = 10 * time.Second // see watcher.backoffCap
	defaultMaxBackoff        = 30 * time.Second // the other paths
	defaultWarnEvery         = time.Minute

	// noticeBuffer lets a consumer that is busy for a moment not hold up
	// polling; a consumer that stops reading holds it up until ctx ends.
	noticeBuffer = 4

	// confirmAge: a scheduled event about to be acted on is re-checked
	// first when the last look at the list is older than this, so that a
	// cancelled event is not acted on.
	confirmAge = time.Second
)

// The IMDS paths, relative to /latest/meta-data.
const (
	pathSpot      = "spot/instance-action"
	pathASG       = "autoscaling/target-lifecycle-state"
	pathRebalance = "events/recommendations/rebalance"
	pathScheduled = "events/maintenance/scheduled"
)

// Config configures Watch. The zero value of each field has a useful
// meaning, given beside it.
type Config struct {
	// Mode says whether to watch at all; see Auto, On and Off.
	Mode Mode
	// Endpoint is the IMDS base URL, an http URL. "" means EndpointEnv
	// (read through Getenv), else DefaultEndpoint, as the SDK does; see
	// ResolveEndpoint.
	Endpoint string
	// Kinds are the notices to watch for; empty means none, and Watch
	// then only closes its channel when ctx ends.
	Kinds []Kind
	// PollInterval is the period of spot/instance-action polls (±10 %
	// jitter, counted from the end of the previous poll); 2s when zero.
	// It is also the first backoff step after a failed spot read (see the
	// package doc for the schedule).
	PollInterval time.Duration
	// StaleAfter: a Spot notice whose time lies more than this before
	// Start is left over from an earlier failed interruption, and is
	// logged once and ignored. 5m when zero.
	StaleAfter time.Duration
	// Start is when spotinit started, for StaleAfter; zero means the time
	// Watch is called.
	Start time.Time
	// DefaultLead is the lead time given to an ASG notice, which carries
	// no time: its Deadline is Seen + DefaultLead.
	DefaultLead time.Duration
	// ScheduledLead: a scheduled event is delivered at NotBefore -
	// ScheduledLead (at once when that has passed), never earlier.
	ScheduledLead time.Duration
	// ScheduledReboot also acts on the instance-reboot and system-reboot
	// codes; instance-stop and instance-retirement always act.
	ScheduledReboot bool
	// EveryPathAtPollInterval polls every watched path (asg, rebalance and
	// scheduled too) every PollInterval, not only spot/instance-action.
	// Only for an IMDS that has no rate limit to respect, spotinit's own
	// simulator (--simulate-notice), so that a rehearsal sees each notice
	// within one interval; against EC2's IMDS the other paths keep their
	// slower cadence.
	EveryPathAtPollInterval bool
	// Getenv reads the environment for Auto's checks and the endpoint;
	// nil means os.Getenv.
	Getenv func(string) string
	// HTTPClient, when set, is copied and its Transport used under the
	// IMDS client (for tests); its idle connections are closed when Watch
	// ends.
	HTTPClient *http.Client
	// Log receives the watcher's messages; nil discards them.
	Log *slog.Logger

	// Test seams; zero means the default.
	requestTimeout    time.Duration // bound on one IMDS call, token included; at most 1s
	slowInterval      time.Duration // asg and rebalance polls
	scheduledInterval time.Duration // scheduled-event polls
	reprobeInterval   time.Duration // Auto: between probes after one found no IMDS
	spotGap           time.Duration // most time between the starts of two spot reads while failing
	maxBackoff        time.Duration // cap on the backoff of the other paths
	warnEvery         time.Duration // at most one warning per failure class per this
}

// Watch starts watching IMDS as cfg says and returns at once. Notices are
// delivered on the returned channel, each ID once (again with Update set
// when its deadline moves earlier). Watch starts one goroutine, which owns
// everything else (the HTTP connection, the timer); when ctx is done it
// stops, and the channel is closed after it has returned. When there is
// nothing to watch (Off, no kinds, or Auto finding Fargate or IMDS
// disabled) no goroutine runs until ctx is done.
func Watch(ctx context.Context, cfg Config) <-chan Notice {
	ch := make(chan Notice, noticeBuffer)
	w := newWatcher(cfg, ch)
	if w == nil {
		context.AfterFunc(ctx, func() { close(ch) })
		return ch
	}
	go func() {
		defer close(ch)
		defer w.hc.CloseIdleConnections()
		w.run(ctx)
	}()
	return ch
}

// poller is the schedule and state of one IMDS path.
type poller struct {
	kind     Kind
	path     string
	interval time.Duration
	next     time.Time // when to poll next; zero: at once
	began    time.Time // when the last poll began
	last     time.Time // when the last poll ended
	failures int       // consecutive failures, for backoff
}

// faultEpisode is a run of failed polls: from the first failed poll after
// normal answers until every watched path answers normally again. It is
// what the watcher's warnings count in: each class of failure is logged
// once per episode, and its end once.
type faultEpisode struct {
	began  time.Time       // when its first failed poll began
	polls  int             // failed polls in it
	seen   map[string]bool // the classes of failure seen in it
	logged bool            // a warning was logged for it, so its end is logged too
}

// pendingEvent is a scheduled event waiting for its time to act.
type pendingEvent struct {
	notice Notice
	actAt  time.Time
}

// watcher is the state of one Watch; only its goroutine touches it.
type watcher struct {
	mode          Mode
	endpoint      string
	kinds         []Kind
	pollInterval  time.Duration
	staleAfter    time.Duration
	start         time.Time
	defaultLead   time.Duration
	scheduledLead time.Duration
	reboot        bool

	requestTimeout  time.Duration
	reprobeInterval time.Duration
	spotGap         time.Duration
	maxBackoff      time.Duration

	log    *slog.Logger
	out    chan<- Notice
	client *imds.Client
	hc     *http.Client

	pollers   []*poller
	spot      *poller       // nil when not watched
	scheduled *poller       // nil when not watched
	fault     *faultEpisode // nil while IMDS answers normally

	emitted map[string]time.Time // ID → deadline last delivered
	pending map[string]*pendingEvent
	logged  map[string]bool // keys of messages logged once
	warn    *rateLimiter
}

// newWatcher resolves cfg. It returns nil, after logging the one line that
// says why, when there is nothing to watch.
func newWatcher(cfg Config, out chan<- Notice) *watcher {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	skip := func(level slog.Level, reason string, args ...any) *watcher {
		log.Log(context.Background(), level, "imds watching skipped", append([]any{"reason", reason}, args...)...)
		return nil
	}
	if cfg.Mode == Off {
		return skip(slog.LevelInfo, "imds mode is off")
	}
	var kinds []Kind
	for _, k := range []Kind{Spot, ASG, Rebalance, Scheduled} {
		if hasKind(cfg.Kinds, k) {
			kinds = append(kinds, k)
		}
	}
	for _, k := range cfg.Kinds {
		if !hasKind(kinds, k) {
			log.Warn("unknown notice kind ignored", "kind", string(k))
		}
	}
	if len(kinds) == 0 {
		return skip(slog.LevelInfo, "no notice kinds enabled")
	}
	if cfg.Mode == Auto {
		if env := getenv("AWS_EXECUTION_ENV"); strings.HasPrefix(env, "AWS_ECS_FARGATE") {
			return skip(slog.LevelInfo, "running on fargate, which has no imds notices (fargate spot sends SIGTERM)", "env", env)
		}
		if strings.EqualFold(strings.TrimSpace(getenv("AWS_EC2_METADATA_DISABLED")), "true") {
			return skip(slog.LevelInfo, "AWS_EC2_METADATA_DISABLED is true", "hint", "set --imds on to watch anyway")
		}
	}
	endpoint, from, err := ResolveEndpoint(cfg.Endpoint, getenv)
	if err != nil {
		return skip(slog.LevelWarn, "invalid imds endpoint", "setting", from.String(), "error", err.Error())
	}

	w := &watcher{
		mode:            cfg.Mode,
		endpoint:        endpoint,
		kinds:           kinds,
		pollInterval:    positive(cfg.PollInterval, defaultPollInterval),
		staleAfter:      positive(cfg.StaleAfter, defaultStaleAfter),
		start:           cfg.Start,
		defaultLead:     cfg.DefaultLead,
		scheduledLead:   cfg.ScheduledLead,
		reboot:          cfg.ScheduledReboot,
		requestTimeout:  min(positive(cfg.requestTimeout, defaultRequestTimeout), defaultRequestTimeout),
		reprobeInterval: positive(cfg.reprobeInterval, defaultReprobeInterval),
		spotGap:         positive(cfg.spotGap, defaultSpotGap),
		maxBackoff:      positive(cfg.maxBackoff, defaultMaxBackoff),
		log:             log,
		out:             out,
		emitted:         map[string]time.Time{},
		pending:         map[string]*pendingEvent{},
		logged:          map[string]bool{},
		warn:            newRateLimiter(positive(cfg.warnEvery, defaultWarnEvery)),
	}
	if w.start.IsZero() {
		w.start = time.Now()
	}
	slow := max(positive(cfg.slowInterval, defaultSlowInterval), w.pollInterval)
	scheduled := max(positive(cfg.scheduledInterval, defaultScheduledInterval), w.pollInterval)
	if cfg.EveryPathAtPollInterval {
		slow, scheduled = w.pollInterval, w.pollInterval
	}
	for _, k := range kinds {
		p := &poller{kind: k}
		switch k {
		case Spot:
			p.path, p.interval = pathSpot, w.pollInterval
			w.spot = p
		case ASG:
			p.path, p.interval = pathASG, slow
		case Rebalance:
			p.path, p.interval = pathRebalance, slow
		case Scheduled:
			p.path, p.interval = pathScheduled, scheduled
			w.scheduled = p
		}
		w.pollers = append(w.pollers, p)
	}
	w.client, w.hc = newClient(endpoint, cfg.HTTPClient)
	return w
}

func positive(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// jitter returns d ± 10 %.
func jitter(d time.Duration) time.Duration {
	if d < 10 {
		return d
	}
	return d - d/10 + rand.N(d/5+1)
}

func (w *watcher) run(ctx context.Context) {
	if w.mode == Auto && !w.probe(ctx) {
		return
	}
	names := make([]string, len(w.kinds))
	for i, k := range w.kinds {
		names[i] = string(k)
	}
	w.log.Info("imds watching started",
		"endpoint", w.endpoint, "kinds", strings.Join(names, ","), "interval", w.pollInterval, "mode", w.mode.String())
	w.loop(ctx)
}

// probe checks, for Auto, that IMDS is there. When it is not, it logs one
// line saying why and what to change, then re-probes every
// reprobeInterval without a word until IMDS answers or ctx ends. It reports
// whether to go on polling.
func (w *watcher) probe(ctx context.Context) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for probes := 1; ; probes++ {
		_, _, err := get(ctx, w.client, w.pollers[0].path, w.requestTimeout)
		if ctx.Err() != nil {
			return false
		}
		var fe *fetchError
		if err == nil || !errors.As(err, &fe) || !noIMDS(fe.class) {
			// Any answer but these means IMDS is here; later failures
			// are the poll loop's business.
			if probes > 1 {
				w.log.Debug("imds probe succeeded", "probes", probes)
			}
			return true
		}
		if probes == 1 {
			level := slog.LevelWarn
			if fe.class == failUnreachable {
				level = slog.LevelInfo // the normal case off EC2
			}
			w.log.Log(ctx, level, "imds unavailable",
				"reason", fe.class, "endpoint", w.endpoint, "error", fe.short(),
				"hint", hint(fe.class), "reprobe_every", w.reprobeInterval)
		}
		w.log.Debug("imds probe failed", "reason", fe.class, "error", err.Error(), "probes", probes)
		d := jitter(w.reprobeInterval)
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
		}
	}
}

// noIMDS reports whether a probe failure means there is no usable IMDS
// here (as opposed to one that is failing for now).
func noIMDS(class string) bool {
	return class == failUnreachable || class == failForbidden || class == failTokenTimeout
}

// loop polls every watched path on its own schedule and delivers scheduled
// events when they are due, all from this one goroutine, so requests never
// overlap and one connection serves them all.
func (w *watcher) loop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := time.Now()
		for _, p := range w.pollers {
			if now.Before(p.next) {
				continue
			}
			if p != w.spot && w.spotFirst(time.Now()) {
				// Read spot/instance-action first; this path right after.
				p.next = w.spot.next
				continue
			}
			if !w.poll(ctx, p) {
				return
			}
		}
		if !w.deliverDue(ctx) {
			return
		}
		timer.Reset(time.Until(w.nextWake()))
	}
}

// spotFirst reports whether a poll of another path, begun at now, could
// still be running when the next spot read is due: at its scheduled time,
// or spotGap after the previous spot read began, whichever is later. The
// spot path is first in w.pollers, so it is never itself held up by a
// path polled in the same round; this keeps a hung or slow other path from
// stretching the time between two spot reads.
func (w *watcher) spotFirst(now time.Time) bool {
	if w.spot == nil || w.spot.began.IsZero() {
		return false
	}
	due := w.spot.began.Add(w.spotGap)
	if w.spot.next.After(due) {
		due = w.spot.next
	}
	return now.Add(w.requestTimeout).After(due)
}

// nextWake is the earliest of the next polls and pending deliveries.
func (w *watcher) nextWake() time.Time {
	next := w.pollers[0].next
	for _, p := range w.pollers[1:] {
		if p.next.Before(next) {
			next = p.next
		}
	}
	for _, pe := range w.pending {
		if pe.actAt.Before(next) {
			next = pe.actAt
		}
	}
	return next
}

// poll fetches one path, handles what it finds and schedules the next
// poll. It reports false when ctx has ended.
func (w *watcher) poll(ctx context.Context, p *poller) bool {
	began := time.Now()
	p.began = began
	body, found, err := get(ctx, w.client, p.path, w.requestTimeout)
	if ctx.Err() != nil {
		return false
	}
	p.last = time.Now()
	if err != nil {
		p.failures++
		delay := w.backoff(p)
		p.next = p.last.Add(delay)
		w.failed(p, began, err, delay)
		return true
	}
	p.failures = 0
	w.log.Debug("imds poll", "path", p.path, "found", found, "bytes", len(body), "duration", p.last.Sub(began))
	w.answered(began)
	var ok bool
	switch p.kind {
	case Spot:
		ok = w.handleSpot(ctx, p, body, found, began)
	case ASG:
		ok = w.handleASG(ctx, p, body, found, began)
	case Rebalance:
		ok = w.handleRebalance(ctx, p, body, found, began)
	case Scheduled:
		ok = w.handleScheduled(ctx, p, body, found, began)
	}
	p.next = time.Now().Add(jitter(p.interval))
	return ok
}

// backoffCap is the longest pause after a failed poll of p. For
// spot/instance-action it is spotGap (10 s) less the request bound (1 s),
// so that a read begins at most spotGap after the previous one began: a
// notice gives two minutes, and a fault must not eat much of them. For the
// other paths it is maxBackoff (30 s). Never shorter than p's own interval:
// a failure never makes a path polled more often than when it answers.
func (w *watcher) backoffCap(p *poller) time.Duration {
	if p == w.spot {
		return max(w.spotGap-w.requestTimeout, p.interval)
	}
	return max(w.maxBackoff, p.interval)
}

// backoffStep is the nominal pause after p's latest failure: p's interval,
// doubled for each consecutive failure after the first, up to backoffCap.
func (w *watcher) backoffStep(p *poller) time.Duration {
	limit := w.backoffCap(p)
	d := p.interval
	for i := 1; i < p.failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// backoff is the pause after p's latest failure: backoffStep with ±10 %
// jitter, never longer than backoffCap; once the step has reached the cap,
// drawn from the 20 % below it, so that watchers failing together do not
// poll in step.
func (w *watcher) backoff(p *poller) time.Duration {
	step, limit := w.backoffStep(p), w.backoffCap(p)
	if step >= limit {
		return limit - rand.N(limit/5+1)
	}
	return min(jitter(step), limit)
}

// failed logs a failed poll: always at debug, with the SDK's whole error
// chain; and, the first time its class of failure is seen in a fault
// episode, one warning with a short error and a hint. A class that flaps
// in and out of episodes is still warned about at most once per
// warnEvery.
func (w *watcher) failed(p *poller, began time.Time, err error, delay time.Duration) {
	fe, ok := errors.AsType[*fetchError](err)
	if !ok {
		fe = &fetchError{class: failOther, err: err}
	}
	w.log.Debug("imds poll failed", "path", p.path, "class", fe.class, "error", err.Error(),
		"failures", p.failures, "retry_in", delay)
	if w.fault == nil {
		w.fault = &faultEpisode{began: began, seen: map[string]bool{}}
	}
	w.fault.polls++
	if w.fault.seen[fe.class] {
		return
	}
	w.fault.seen[fe.class] = true
	allowed, unlogged := w.warn.allow(fe.class, time.Now())
	if !allowed {
		return
	}
	w.fault.logged = true
	args := []any{"path", p.path, "class", fe.class, "error", fe.short()}
	if h := hint(fe.class); h != "" {
		args = append(args, "hint", h)
	}
	if unlogged > 0 {
		args = append(args, "unlogged_episodes", unlogged)
	}
	w.log.Warn("imds request failed", args...)
}

// answered notes a poll that IMDS answered normally (404 included). When
// it ends a fault episode (no path is failing any more), one line says so:
// at info when the episode was warned about, else at debug.
func (w *watcher) answered(began time.Time) {
	if w.fault == nil {
		return
	}
	for _, p := range w.pollers {
		if p.failures > 0 {
			return
		}
	}
	level := slog.LevelDebug
	if w.fault.logged {
		level = slog.LevelInfo
	}
	w.log.Log(context.Background(), level, "imds answering again",
		"fault_duration", began.Sub(w.fault.began), "failed_polls", w.fault.polls)
	w.fault = nil
}

// unreadable warns, rate-limited, about a notice body that does not parse.
func (w *watcher) unreadable(p *poller, body []byte, err error) {
	w.log.Debug("imds notice unreadable", "path", p.path, "error", err.Error())
	ok, suppressed := w.warn.allow("unreadable "+p.path, time.Now())
	if !ok {
		return
	}
	args := []any{"path", p.path, "error", truncate(err.Error(), 120), "body", truncate(string(body), 120)}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	w.log.Warn("imds notice unreadable", args...)
}

// once logs at info the first time key is seen.
func (w *watcher) once(key, msg string, args ...any) {
	if w.logged[key] {
		return
	}
	w.logged[key] = true
	w.log.Info(msg, args...)
}

func (w *watcher) handleSpot(ctx context.Context, p *poller, body []byte, found bool, seen time.Time) bool {
	if !found {
		return true
	}
	sn, err := parseSpot(body)
	if err != nil {
		w.unreadable(p, body, err)
		return true
	}
	id := "spot/" + sn.Action
	switch sn.Action {
	case "terminate", "stop", "hibernate":
	default:
		w.once("unknown "+id, "imds notice ignored",
			"kind", string(Spot), "action", truncate(sn.Action, 64), "reason", "unknown spot action")
		return true
	}
	if sn.Time.Before(w.start.Add(-w.staleAfter)) {
		// AWS documents that a notice can stay behind after a failed
		// interruption; one from long before we started is not for us.
		w.once("stale "+id, "imds notice ignored",
			"kind", string(Spot), "action", sn.Action, "notice_time", sn.Time, "reason", "stale",
			"start", w.start, "stale_after", w.staleAfter)
		return true
	}
	return w.deliver(ctx, Notice{
		Kind: Spot, Action: sn.Action, ID: id, Time: sn.Time, Deadline: sn.Time, Seen: seen,
	})
}

func (w *watcher) handleASG(ctx context.Context, p *poller, body []byte, found bool, seen time.Time) bool {
	if !found {
		return true
	}
	if !parseASG(body) {
		w.log.Debug("asg lifecycle state", "path", p.path, "state", truncate(strings.TrimSpace(string(body)), 64))
		return true
	}
	return w.deliver(ctx, Notice{
		Kind: ASG, Action: "terminate", ID: string(ASG), Deadline: seen.Add(w.defaultLead), Seen: seen,
	})
}

func (w *watcher) handleRebalance(ctx context.Context, p *poller, body []byte, found bool, seen time.Time) bool {
	if !found {
		return true
	}
	t, err := parseRebalance(body)
	if err != nil {
		w.unreadable(p, body, err)
		return true
	}
	return w.deliver(ctx, Notice{
		Kind: Rebalance, Action: "rebalance", ID: string(Rebalance), Time: t, Seen: seen,
	})
}

// ActsOnScheduled reports whether a scheduled event with this code is acted
// on: instance-stop and instance-retirement always, instance-reboot and
// system-reboot only with reboot (Config.ScheduledReboot), any other code
// (system-maintenance, anything new) never; it is then logged once as
// ignored. spotinit's start-up rules read it too, so that a rehearsal of an
// event that would be ignored is refused.
func ActsOnScheduled(code string, reboot bool) bool {
	switch code {
	case "instance-stop", "instance-retirement":
		return true
	case "instance-reboot", "system-reboot":
		return reboot
	}
	return false
}

// actsOn reports whether a scheduled event code is acted on.
func (w *watcher) actsOn(code string) bool { return ActsOnScheduled(code, w.reboot) }

// handleScheduled reconciles the pending scheduled events with the list
// IMDS gave: new acting events become pending, pending ones that are gone
// or no longer active are cancelled, delivered ones may get an Update.
func (w *watcher) handleScheduled(ctx context.Context, p *poller, body []byte, found bool, seen time.Time) bool {
	var events []scheduledEvent
	complete := true // the list is whole: a pending event missing from it is gone
	if found {
		var err error
		events, err = parseScheduled(body)
		if err != nil {
			w.unreadable(p, body, err)
			complete = false
		}
	}
	acting := make(map[string]bool)
	var actOn []scheduledEvent
	for _, e := range events {
		if e.State != "active" {
			continue // scheduled events stay listed as completed or canceled
		}
		if !w.actsOn(e.Code) {
			w.once("ignored "+e.EventID, "imds notice ignored",
				"kind", string(Scheduled), "action", truncate(e.Code, 64), "id", truncate(e.EventID, 64),
				"not_before", e.NotBefore, "reason", "event code not acted on")
			continue
		}
		if !acting[e.EventID] {
			acting[e.EventID] = true
			actOn = append(actOn, e)
		}
	}
	if complete {
		for id, pe := range w.pending {
			if !acting[id] {
				delete(w.pending, id)
				w.log.Info("scheduled event cancelled", "id", id, "action", pe.notice.Action, "not_before", pe.notice.Deadline)
			}
		}
	}
	for _, e := range actOn {
		n := Notice{Kind: Scheduled, Action: e.Code, ID: e.EventID, Time: e.NotBefore, Deadline: e.NotBefore, Seen: seen}
		if _, done := w.emitted[e.EventID]; done {
			if !w.deliver(ctx, n) { // an Update if NotBefore moved earlier
				return false
			}
			continue
		}
		actAt := e.NotBefore.Add(-w.scheduledLead)
		if pe, ok := w.pending[e.EventID]; ok {
			// Not delivered yet: follow NotBefore either way.
			n.Seen = pe.notice.Seen
			pe.notice, pe.actAt = n, actAt
			continue
		}
		w.pending[e.EventID] = &pendingEvent{notice: n, actAt: actAt}
		w.log.Info("scheduled event seen",
			"id", truncate(e.EventID, 64), "action", truncate(e.Code, 64), "not_before", e.NotBefore, "act_at", actAt)
	}
	return true
}

// deliverDue delivers the pending scheduled events whose time has come,
// first re-reading the list when the last look is old so that a cancelled
// event is not acted on. It reports false when ctx has ended.
func (w *watcher) deliverDue(ctx context.Context) bool {
	due := func() []*pendingEvent {
		now := time.Now()
		var d []*pendingEvent
		for _, pe := range w.pending {
			if !pe.actAt.After(now) {
				d = append(d, pe)
			}
		}
		return d
	}
	if len(due()) > 0 && time.Since(w.scheduled.last) > confirmAge {
		if !w.poll(ctx, w.scheduled) {
			return false
		}
	}
	d := due()
	slices.SortFunc(d, func(a, b *pendingEvent) int { return cmp.Compare(a.actAt.UnixNano(), b.actAt.UnixNano()) })
	for _, pe := range d {
		delete(w.pending, pe.notice.ID)
		if !w.deliver(ctx, pe.notice) {
			return false
		}
	}
	return true
}

// deliver sends n unless its ID was delivered before; a repeat is sent,
// marked Update, only when its deadline is earlier than the one delivered.
// It reports false when ctx ended first.
func (w *watcher) deliver(ctx context.Context, n Notice) bool {
	if prev, ok := w.emitted[n.ID]; ok {
		if n.Deadline.IsZero() || prev.IsZero() || !n.Deadline.Before(prev) {
			return true
		}
		n.Update = true
	}
	w.emitted[n.ID] = n.Deadline
	args := []any{"kind", string(n.Kind), "action", truncate(n.Action, 64), "id", truncate(n.ID, 64)}
	if !n.Time.IsZero() {
		args = append(args, "notice_time", n.Time) // not "time": slog's own key
	}
	if !n.Deadline.IsZero() {
		// lead is the stop report's: from when the notice was seen (a
		// scheduled event: first seen listed, not acted on) to its deadline.
		args = append(args, "deadline", n.Deadline, "lead", n.Deadline.Sub(n.Seen).Round(time.Millisecond))
	}
	if n.Update {
		args = append(args, "update", true)
	}
	w.log.Info("interruption notice", args...)
	select {
	case w.out <- n:
		return true
	case <-ctx.Done():
		return false
	}
}

// rateLimiter allows one event per key per period and counts the rest.
type rateLimiter struct {
	every      time.Duration
	last       map[string]time.Time
	suppressed map[string]int
}

func newRateLimiter(every time.Duration) *rateLimiter {
	return &rateLimiter{every: every, last: map[string]time.Time{}, suppressed: map[string]int{}}
}

// allow reports whether to log an event of key at now, and how many were
// suppressed since the last one allowed.
func (r *rateLimiter) allow(key string, now time.Time) (bool, int) {
	if last, ok := r.last[key]; ok && now.Sub(last) < r.every {
		r.suppressed[key]++
		return false, 0
	}
	r.last[key] = now
	n := r.suppressed[key]
	delete(r.suppressed, key)
	return true, n
}
