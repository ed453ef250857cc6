package simulator

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Server is a running simulator. Its zero value is not usable; use Start.
type Server struct {
	url string
	h   *handler
	srv *http.Server
	log *slog.Logger

	cancel context.CancelFunc // ends every request's context
	served chan struct{}      // closed when Serve has returned
	stop   func() bool        // unregisters the close on ctx
	logged chan struct{}      // closed when the notice logger has returned

	// busy counts accepted connections until they close or are hijacked,
	// and handlers until they return, so that Close can wait for both. Add
	// happens in Serve's goroutine (StateNew) or while the handler's own
	// connection is still counted, never on a zero counter during Wait.
	busy sync.WaitGroup

	once sync.Once
	err  error
}

// Start listens on addr (such as "127.0.0.1:0") and serves sc until ctx is
// done or Close is called. It logs one line with the URL (and the scenario
// in its text form) when it starts and one as each notice becomes visible
// (Spot, ASG, rebalance, each scheduled event); requests are logged at debug
// level only. log may be nil.
func Start(ctx context.Context, addr string, sc Scenario, log *slog.Logger) (*Server, error) {
	return StartClock(ctx, addr, sc, log, nil)
}

// StartClock is Start with the scenario's clock read through now, as
// NewHandler reads it (nil means time.Now): a test can hold the scenario's
// time still until what it tests is ready. With a clock of its own the
// server does not log when notices become visible.
func StartClock(ctx context.Context, addr string, sc Scenario, log *slog.Logger, now func() time.Time) (*Server, error) {
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("simulated scenario: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("simulated imds: %w", err)
	}
	realClock := now == nil
	if realClock {
		now = time.Now
	}
	start := now()
	base, cancel := context.WithCancel(context.Background())
	s := &Server{
		url:    "http://" + ln.Addr().String(),
		h:      newHandler(sc, start, now, log),
		log:    log,
		cancel: cancel,
		served: make(chan struct{}),
		logged: make(chan struct{}),
	}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.busy.Add(1)
			defer s.busy.Done()
			s.h.ServeHTTP(w, r)
		}),
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnState:         s.connState,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(s.served)
		s.srv.Serve(ln) // returns ErrServerClosed after Close
	}()
	s.stop = context.AfterFunc(ctx, func() { s.shutdown() }) // not Close: s.stop may not be set yet
	log.Info("simulated imds listening", "url", s.url, "scenario", sc.String())
	if realClock {
		go s.logNotice(base, start)
	} else {
		close(s.logged)
	}
	return s, nil
}

// visible is something the scenario publishes After the server's start:
// one line says so when it appears.
type visible struct {
	after time.Duration
	msg   string
	args  func() []any
}

// logNotice logs one line as each notice of the scenario becomes visible
// (the Spot notice, the ASG's Terminated state, the rebalance
// recommendation, each scheduled event), in the order they appear, unless
// the server stops first. Times are logged as served.
func (s *Server) logNotice(ctx context.Context, start time.Time) {
	defer close(s.logged)
	sc := s.h.sc
	var vs []visible
	if sp := sc.Spot; sp != nil {
		vs = append(vs, visible{sp.After, "simulated spot notice visible", func() []any {
			return []any{"action", sp.Action, "notice_time", s.h.spotTime(time.Now()).Truncate(time.Second)}
		}})
	}
	if a := sc.ASG; a != nil {
		vs = append(vs, visible{a.After, "simulated asg notice visible", func() []any {
			return []any{"state", "Terminated"}
		}})
	}
	if rb := sc.Rebalance; rb != nil {
		vs = append(vs, visible{rb.After, "simulated rebalance notice visible", func() []any {
			return []any{"notice_time", start.Add(rb.After).Truncate(time.Second)}
		}})
	}
	for _, ev := range sc.Scheduled {
		vs = append(vs, visible{ev.After, "simulated scheduled notice visible", func() []any {
			nb := ev.NotBefore
			if nb.IsZero() {
				nb = start.Add(ev.StartsIn)
			}
			return []any{"action", ev.Code, "id", ev.EventID, "state", ev.State, "not_before", nb.Truncate(time.Second)}
		}})
	}
	slices.SortStableFunc(vs, func(a, b visible) int { return cmp.Compare(a.after, b.after) })
	for _, v := range vs {
		if !wait(ctx, time.Until(start.Add(v.after))) {
			return
		}
		s.log.Info(v.msg, v.args()...)
	}
}

func (s *Server) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.busy.Add(1)
	case http.StateHijacked, http.StateClosed:
		s.busy.Done()
	}
}

// URL returns the base URL to give an IMDS client, such as
// "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.url }

// Stats returns a copy of the counters so far.
func (s *Server) Stats() Stats { return s.h.snapshot() }

// Close stops the server: it closes the listener and every connection, ends
// every request's context (so delays and drips stop), and returns once every
// connection and handler is done. It may be called more than once and
// concurrently; every call returns the first call's result.
func (s *Server) Close() error {
	s.stop()
	return s.shutdown()
}

// shutdown does Close's work once; later calls wait for the first.
func (s *Server) shutdown() error {
	s.once.Do(func() {
		// Connections first, so that a handler woken by the cancel finds
		// its connection gone instead of answering.
		s.err = s.srv.Close()
		s.cancel()
		<-s.served
		<-s.logged
		s.busy.Wait()
		s.log.Debug("simulated imds stopped", "url", s.url)
	})
	return s.err
}
