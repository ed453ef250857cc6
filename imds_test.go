package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spotinit/spotinit/simulator"
)

// cmdFakeimds starts a scriptable fake IMDS (the simulator) on loopback for
// the rest of the script and puts its URL in $IMDS_URL:
//
//	fakeimds [-after FILE] SCENARIO...
//
// SCENARIO is the simulator's text form (see package simulator), e.g.
// "spot=500ms" or "fault=token:403". With -after, the scenario's clock
// stands still until FILE (relative to $WORK) exists, so that "spot=200ms"
// means 200 ms after the child said it was ready, however long spotinit
// and the child took to start (the times a notice names still count from
// the fake's start). The server is closed when the script ends.
func cmdFakeimds(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! fakeimds")
	}
	var now func() time.Time
	if len(args) > 1 && args[0] == "-after" {
		now = clockAfter(ts.MkAbs(args[1]))
		args = args[2:]
	}
	sc, err := simulator.ParseScenario(strings.Join(args, " "))
	ts.Check(err)
	srv, err := simulator.StartClock(context.Background(), "127.0.0.1:0", sc, nil, now)
	ts.Check(err)
	ts.Defer(func() { srv.Close() })
	ts.Setenv("IMDS_URL", srv.URL())
	ts.Value(imdsKey{}).(*imdsHolder).srv = srv
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
// where NAME is tokens (token PUTs), requests, unauthorized or a path's GET
// count (get:spot/instance-action) and OP is one of == <= >=. With -wait it
// waits (bounded) until the condition holds.
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
