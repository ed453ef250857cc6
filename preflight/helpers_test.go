package preflight

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spotinit/spotinit/interruption"
	"github.com/spotinit/spotinit/simulator"
)

// envOf returns a LookupEnv that sees only env.
func envOf(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// baseConfig is a Config that touches nothing of this machine's: IMDS
// off, an empty root (no platform markers), a fixed pid, a subreaper
// probe that succeeds, and only the environment given.
func baseConfig(t *testing.T, env map[string]string) Config {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["PATH"]; !ok {
		env["PATH"] = "/usr/bin:/bin"
	}
	return Config{
		LookupEnv:    envOf(env),
		StopTimeout:  30 * time.Second,
		KillMargin:   2 * time.Second,
		IMDS:         interruption.Off,
		Kinds:        []interruption.Kind{interruption.Spot, interruption.ASG},
		PollInterval: 2 * time.Second,
		root:         t.TempDir(),
		getpid:       func() int { return 4242 },
		setSubreaper: func() error { return nil },
	}
}

// fakeIMDS serves a simulator scenario (its text form, e.g.
// "fault=token:403") on loopback for the rest of the test.
func fakeIMDS(t *testing.T, scenario string) string {
	t.Helper()
	sc, err := simulator.ParseScenario(scenario)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(simulator.NewHandler(sc, time.Now(), nil))
	t.Cleanup(srv.Close)
	return srv.URL
}

// findings returns the findings of severity s in area, as text.
func findings(r *Report, s Severity, area string) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Severity == s && (area == "" || f.Area == area) {
			out = append(out, f.Message+" | fix: "+f.Fix)
		}
	}
	return out
}

// wantFinding fails unless exactly one finding of severity s in area
// contains every substring given.
func wantFinding(t *testing.T, r *Report, s Severity, area string, substrs ...string) {
	t.Helper()
	n := 0
	for _, f := range findings(r, s, area) {
		all := true
		for _, sub := range substrs {
			all = all && strings.Contains(f, sub)
		}
		if all {
			n++
		}
	}
	if n != 1 {
		t.Errorf("want one %s in %s containing %q, got %d; all findings:\n%s", s, area, substrs, n, dump(r))
	}
}

func dump(r *Report) string {
	var b strings.Builder
	r.WriteText(&b)
	return b.String()
}
