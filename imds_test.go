package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spotinit/spotinit/simulator"
)

// cmdFakeimds starts a scriptable fake IMDS (the simulator) on loopback for
// the rest of the script and puts its URL in $IMDS_URL:
//
//	fakeimds SCENARIO...
//
// SCENARIO is the simulator's text form (see package simulator), e.g.
// "spot=500ms" or "fault=token:403". The server is closed when the script
// ends.
func cmdFakeimds(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! fakeimds")
	}
	sc, err := simulator.ParseScenario(strings.Join(args, " "))
	ts.Check(err)
	srv, err := simulator.Start(context.Background(), "127.0.0.1:0", sc, nil)
	ts.Check(err)
	ts.Defer(func() { srv.Close() })
	ts.Setenv("IMDS_URL", srv.URL())
	ts.Value(imdsKey{}).(*imdsHolder).srv = srv
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
