package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spotinit/spotinit/simulator"
)

// cmdFakeimds starts a scriptable fake IMDS (the simulator) on loopback for
// the rest of the script and puts its URL in $IMDS_URL:
//
//	fakeimds [-after FILE | -step D] SCENARIO...
//
// SCENARIO is the simulator's text form (see package simulator), e.g.
// "spot=500ms" or "fault=token:403". With -after, the scenario's clock
// stands still until FILE (relative to $WORK) exists, so that "spot=200ms"
// means 200 ms after the child said it was ready, however long spotinit
// and the child took to start (the times a notice names still count from
// the fake's start). With -step, the scenario's clock moves D with each
// request instead of with real time, so that its windows count requests
// however slowly they come: with -step 100ms, "fault=token:500:0s-300ms"
// fails the first three requests. The server is closed when the script ends.
func cmdFakeimds(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! fakeimds")
	}
	var now func() time.Time
	var stepped atomic.Pointer[simulator.Server] // the server a -step clock counts requests of
	if len(args) > 1 {
		switch args[0] {
		case "-after":
			now = clockAfter(ts.MkAbs(args[1]))
			args = args[2:]
		case "-step":
			step, err := time.ParseDuration(args[1])
			ts.Check(err)
			now = clockStep(&stepped, step)
			args = args[2:]
		}
	}
	sc, err := simulator.ParseScenario(strings.Join(args, " "))
	ts.Check(err)
	srv, err := simulator.StartClock(context.Background(), "127.0.0.1:0", sc, nil, now)
	ts.Check(err)
	stepped.Store(srv)
	ts.Defer(func() { srv.Close() })
	ts.Setenv("IMDS_URL", srv.URL())
	ts.Value(imdsKey{}).(*imdsHolder).srv = srv
}

// clockStep returns a clock that reads step times the number of requests
// the server in srv has received before the one being answered: the
// simulator counts a request before it reads the clock for it.
func clockStep(srv *atomic.Pointer[simulator.Server], step time.Duration) func() time.Time {
	start := time.Now()
	return func() time.Time {
		s := srv.Load()
		if s == nil { // the server reading its start time
			return start
		}
		return start.Add(time.Duration(max(s.Stats().Requests-1, 0)) * step)
	}
}

// clockAfter returns a clock that reads the moment it was made until file
// exists, and from then on moves with real time: a scenario's time starts
// when file appears (checked on each reading, that is on each request).
func clockAfter(file string) func() time.Time {
	start := time.Now()
	var mu sync.Mutex
	var since time.Time // when file was first seen; zero before
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if since.IsZero() {
			if _, err := os.Stat(file); err != nil {
				return start
			}
			since = time.Now()
		}
		return start.Add(time.Since(since))
	}
}

// imdsKey finds a script's imdsHolder among its testscript values (the
// Setup function puts one there for each script).
type imdsKey struct{}

type imdsHolder struct{ srv *simulator.Server }

// cmdImdsstat checks a counter of the fake IMDS: imdsstat [-wait] NAME OP N,
// where NAME is tokens (token PUTs), requests, unauthorized, faulted
// (requests a fault acted on), the answers with a status
// (status:429) or a path's GET count (get:spot/instance-action) and OP is
// one of == <= >=. With -wait it waits (bounded) until the condition holds.
func cmdImdsstat(ts *testscript.TestScript, neg bool, args []string) {
	wait := len(args) > 0 && args[0] == "-wait"
	if wait {
		args = args[1:]
	}
	if neg || len(args) != 3 {
		ts.Fatalf("usage: imdsstat [-wait] NAME ==|<=|>= N")
	}
	srv := ts.Value(imdsKey{}).(*imdsHolder).srv
	if srv == nil {
		ts.Fatalf("imdsstat: no fakeimds running")
	}
	want, err := strconv.Atoi(args[2])
	ts.Check(err)
	deadline := time.Now().Add(waitTimeout)
	for {
		st := srv.Stats()
		var got int
		switch name := args[0]; {
		case name == "tokens":
			got = st.TokenPUTs
		case name == "requests":
			got = st.Requests
		case name == "unauthorized":
			got = st.Unauthorized
		case name == "faulted":
			got = st.Faulted
		case strings.HasPrefix(name, "status:"):
			code, err := strconv.Atoi(strings.TrimPrefix(name, "status:"))
			ts.Check(err)
			got = st.Statuses[code]
		case strings.HasPrefix(name, "get:"):
			got = st.GETs["/latest/meta-data/"+strings.TrimPrefix(name, "get:")]
		default:
			ts.Fatalf("imdsstat: unknown counter %q", name)
		}
		holds, known := map[string]bool{"==": got == want, "<=": got <= want, ">=": got >= want}[args[1]]
		if !known {
			ts.Fatalf("imdsstat: unknown operator %q", args[1])
		}
		if holds {
			return
		}
		if !wait || time.Now().After(deadline) {
			ts.Fatalf("imdsstat: %s is %d, want %s %d (stats: %s)", args[0], got, args[1], want, fmt.Sprintf("%+v", st))
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}
