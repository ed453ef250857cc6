package preflight

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spotinit/spotinit/interruption"
)

// probe runs the check against a fake IMDS with the given scenario in
// mode (the platform is "none" unless env says otherwise).
func probe(t *testing.T, mode interruption.Mode, scenario string, env map[string]string) Report {
	t.Helper()
	cfg := baseConfig(t, env)
	cfg.IMDS = mode
	cfg.Endpoint = fakeIMDS(t, scenario)
	return Run(context.Background(), cfg)
}

func pathProbe(t *testing.T, r *Report, path string) PathProbe {
	t.Helper()
	for _, p := range r.IMDS.Paths {
		if p.Path == path {
			return p
		}
	}
	t.Fatalf("no read of %s:\n%s", path, dump(r))
	return PathProbe{}
}

func TestIMDSHealthy(t *testing.T) {
	t.Parallel()
	r := probe(t, interruption.Auto, "", nil)
	if !r.OK() || len(r.Findings) != 0 {
		t.Fatalf("a healthy IMDS gave findings:\n%s", dump(&r))
	}
	if !r.IMDS.Probed || r.IMDS.Token == nil || r.IMDS.Token.Status != 200 || r.IMDS.Token.RTT <= 0 {
		t.Errorf("token probe %+v", r.IMDS.Token)
	}
	if got := pathProbe(t, &r, "spot/instance-action"); got.Status != 404 || got.Meaning != "no notice" || got.RTT <= 0 {
		t.Errorf("spot read %+v", got)
	}
	if got := pathProbe(t, &r, "autoscaling/target-lifecycle-state"); got.Status != 200 || got.Meaning != "InService" {
		t.Errorf("asg read %+v", got)
	}
	if r.IMDS.InstanceID != "i-0123456789abcdef0" {
		t.Errorf("instance id %q", r.IMDS.InstanceID)
	}
	if !strings.Contains(r.IMDS.Decision, "watched") {
		t.Errorf("decision %q", r.IMDS.Decision)
	}
	// Only the watched kinds are read, then the identity paths.
	var paths []string
	for _, p := range r.IMDS.Paths {
		paths = append(paths, p.Path)
	}
	if strings.Join(paths, " ") != "spot/instance-action autoscaling/target-lifecycle-state instance-id instance-life-cycle" {
		t.Errorf("paths read: %q", paths)
	}
}

func TestIMDSActiveSpotNotice(t *testing.T) {
	t.Parallel()
	r := probe(t, interruption.On, "spot=0s", nil)
	if !r.OK() {
		t.Fatalf("an active notice is not a problem:\n%s", dump(&r))
	}
	wantFinding(t, &r, Warning, "imds", "Spot interruption notice is active", "terminate")
	// The notice's time has whole seconds: two minutes ahead, give or take one.
	if m := pathProbe(t, &r, "spot/instance-action").Meaning; !regexp.MustCompile(`^notice: terminate at \S+Z \(in (1m5\ds|2m0s)\)$`).MatchString(m) {
		t.Errorf("meaning %q", m)
	}
}

func TestIMDSStaleSpotNotice(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t, nil)
	cfg.IMDS, cfg.StaleAfter = interruption.On, 5*time.Minute
	cfg.Endpoint = fakeIMDS(t, "spot=0s,time=2020-01-01T00:00:00Z")
	r := Run(context.Background(), cfg)
	if len(r.Findings) != 0 {
		t.Errorf("a stale notice is ignored by a run, so not worth a warning:\n%s", dump(&r))
	}
	if m := pathProbe(t, &r, "spot/instance-action").Meaning; !strings.Contains(m, "stale") {
		t.Errorf("meaning %q", m)
	}
}

// TestIMDSTokenHang is the hop-limit trap: the PUT connects and nothing
// comes back. Diagnosed as such in both modes, with the fix for the
// platform, and bounded in time.
func TestIMDSTokenHang(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode interruption.Mode
		env  map[string]string
		fix  string
	}{
		{interruption.Auto, nil, "--network host"},
		{interruption.On, map[string]string{"AWS_EXECUTION_ENV": "AWS_ECS_EC2"}, "awsvpc"},
		{interruption.Auto, map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "Karpenter"},
		{interruption.On, map[string]string{"AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"}, "Fargate has no IMDS"},
	} {
		t.Run(tc.fix, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := probe(t, tc.mode, "fault=token:delay=1m", tc.env)
			took := time.Since(start)
			wantFinding(t, &r, Problem, "imds", "connected but got no answer within 2s", "HttpPutResponseHopLimit", tc.fix)
			if r.OK() || len(r.IMDS.Paths) != 0 || !strings.Contains(r.IMDS.Decision, "hop limit") {
				t.Errorf("reads after a hung token request:\n%s", dump(&r))
			}
			// The whole check is bounded: one probe timeout for the
			// token (a bound on failure, not a measurement).
			if took > 10*time.Second {
				t.Errorf("the check took %v with a hanging IMDS", took)
			}
		})
	}
}

// TestIMDSTokenDrip: an answer that starts but does not finish in time is
// a failing IMDS, not the hop-limit trap (whose answers never start).
func TestIMDSTokenDrip(t *testing.T) {
	t.Parallel()
	r := probe(t, interruption.On, "fault=token:drip=300ms", nil)
	wantFinding(t, &r, Problem, "imds", "token request (PUT", "failed: the answer began but did not end within 2s")
	if len(r.Findings) != 1 || strings.Contains(dump(&r), "HopLimit") {
		t.Errorf("findings:\n%s", dump(&r))
	}
}

func TestIMDSForbidden(t *testing.T) {
	t.Parallel()
	// auto: IMDS turned off for the instance is what auto is for, but
	// worth a warning (no notices will be seen).
	r := probe(t, interruption.Auto, "fault=token:403", nil)
	wantFinding(t, &r, Warning, "imds", "(403)", "--http-endpoint enabled")
	if !r.OK() {
		t.Errorf("403 under auto is a warning:\n%s", dump(&r))
	}
	r = probe(t, interruption.On, "fault=token:403", nil)
	wantFinding(t, &r, Problem, "imds", "(403)")
}

func TestIMDSTokenRefused(t *testing.T) {
	t.Parallel()
	for _, status := range []string{"401", "404", "405"} {
		r := probe(t, interruption.Auto, "fault=token:"+status, nil)
		wantFinding(t, &r, Problem, "imds", "with "+status, "does not serve IMDSv2 tokens")
	}
}

func TestIMDSReadsUnauthorized(t *testing.T) {
	t.Parallel()
	r := probe(t, interruption.On, "fault=/latest/meta-data:401", nil)
	// One cause, one finding, naming every read it hit.
	wantFinding(t, &r, Problem, "imds", "refuses the token it has just issued (401 reading spot/instance-action, autoscaling/target-lifecycle-state, instance-id, instance-life-cycle)")
	if len(r.Findings) != 1 {
		t.Errorf("findings:\n%s", dump(&r))
	}
	if r.IMDS.Decision != "watched, but every read fails (see the problems)" {
		t.Errorf("decision %q", r.IMDS.Decision)
	}
}

// TestIMDSNotFoundEverywhere: an endpoint that answers 404 to every read
// gives "no notice" on the notice paths (as a real IMDS does), but no
// instance-id: not an instance metadata service.
func TestIMDSNotFoundEverywhere(t *testing.T) {
	t.Parallel()
	r := probe(t, interruption.Auto, "fault=/latest/meta-data:404", nil)
	wantFinding(t, &r, Problem, "imds", "404 for meta-data/instance-id", "not an instance metadata service")
	if p := pathProbe(t, &r, "spot/instance-action"); p.Meaning != "no notice" {
		t.Errorf("spot %+v", p)
	}
	if len(r.Findings) != 1 {
		t.Errorf("want only the instance-id problem:\n%s", dump(&r))
	}
}

func TestIMDSSlow(t *testing.T) {
	t.Parallel()
	// Slower than half the watcher's budget: a warning (or, on a loaded
	// machine, a problem); both name the read and say it is slow.
	r := probe(t, interruption.On, "fault=spot:delay=600ms", nil)
	if p := pathProbe(t, &r, "spot/instance-action"); p.Status != 404 || time.Duration(p.RTT) < 600*time.Millisecond {
		t.Errorf("slow read %+v", p)
	}
	found := false
	for _, f := range r.Findings {
		found = found || f.Area == "imds" && strings.Contains(f.Message, "reading spot/instance-action took up to") &&
			(strings.Contains(f.Message, "slow") || strings.Contains(f.Message, "longer than"))
	}
	if !found {
		t.Errorf("no slow finding:\n%s", dump(&r))
	}
	// Slower than the watcher allows (1s), answered within the check's 2s.
	r = probe(t, interruption.On, "fault=token:delay=1200ms", nil)
	wantFinding(t, &r, Problem, "imds", "the token request took", "longer than the 1s the watcher allows")
}

func TestIMDSReadHang(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t, nil)
	cfg.IMDS = interruption.On
	cfg.probeTimeout = 300 * time.Millisecond
	cfg.Endpoint = fakeIMDS(t, "fault=spot:delay=1m")
	r := Run(context.Background(), cfg)
	wantFinding(t, &r, Problem, "imds", "reading spot/instance-action: connected, but no answer within 300ms")
	if p := pathProbe(t, &r, "instance-id"); p.Status != 200 {
		t.Errorf("the other reads must not wait for the hung one: %+v", p)
	}
	if r.IMDS.Decision != "watched, but some reads fail (see the problems)" {
		t.Errorf("decision %q", r.IMDS.Decision)
	}
}

func TestIMDSThrottled(t *testing.T) {
	t.Parallel()
	r := probe(t, interruption.On, "fault=token:503", nil)
	wantFinding(t, &r, Warning, "imds", "with 503")
	r = probe(t, interruption.On, "fault=spot:429", nil)
	wantFinding(t, &r, Warning, "imds", "reading spot/instance-action answered 429")
	if !r.OK() {
		t.Errorf("throttling is transient, a warning:\n%s", dump(&r))
	}
}

func TestIMDSUnreachable(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: refused at once.
	for _, tc := range []struct {
		mode  interruption.Mode
		env   map[string]string
		level Severity // "": no finding
	}{
		{interruption.Auto, nil, ""}, // off EC2: what auto is for
		{interruption.On, nil, Problem},
		{interruption.Auto, map[string]string{"AWS_EXECUTION_ENV": "AWS_ECS_EC2"}, Warning}, // blocked on ECS
	} {
		cfg := baseConfig(t, tc.env)
		cfg.IMDS, cfg.Endpoint = tc.mode, "http://127.0.0.1:9"
		r := Run(context.Background(), cfg)
		imds := findings(&r, Problem, "imds")
		imds = append(imds, findings(&r, Warning, "imds")...)
		switch {
		case tc.level == "" && len(imds) != 0, tc.level != "" && len(imds) != 1:
			t.Errorf("%v %v: findings %q", tc.mode, tc.env, imds)
		case tc.level != "":
			wantFinding(t, &r, tc.level, "imds", "nothing answers at http://127.0.0.1:9 (connection refused)")
		}
		if !strings.Contains(r.IMDS.Decision, "nothing answers") {
			t.Errorf("decision %q", r.IMDS.Decision)
		}
	}
}

// TestIMDSDecisions: what is not probed, and why, as the watcher decides.
func TestIMDSDecisions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		mode     interruption.Mode
		env      map[string]string
		kinds    []interruption.Kind
		sim      bool
		endpoint string
		decision string
		finding  string // "": none
	}{
		{"off", interruption.Off, nil, nil, false, "", "off (--imds off)", ""},
		{"fargate", interruption.Auto, map[string]string{"AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"}, nil, false, "", "Fargate has no IMDS notices", ""},
		{"disabled", interruption.Auto, map[string]string{"AWS_EC2_METADATA_DISABLED": "True"}, nil, false, "", "AWS_EC2_METADATA_DISABLED=true", ""},
		{"no kinds", interruption.On, nil, []interruption.Kind{}, false, "", "--notices names no kind", ""},
		{"simulated", interruption.Auto, nil, nil, true, "", "local simulator", "--simulate-notice is set"},
		{"bad env endpoint", interruption.On, map[string]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT": "ftp://x"}, nil, false, "", "not an http URL",
			`AWS_EC2_METADATA_SERVICE_ENDPOINT "ftp://x" is not an http URL`},
		{"bad flag endpoint", interruption.On, nil, nil, false, "http://", "not an http URL", `--imds-endpoint "http://" is not an http URL`},
	} {
		cfg := baseConfig(t, tc.env)
		cfg.IMDS, cfg.Simulated, cfg.Endpoint = tc.mode, tc.sim, tc.endpoint
		if tc.kinds != nil {
			cfg.Kinds = tc.kinds
		}
		r := Run(context.Background(), cfg)
		if r.IMDS.Probed || !strings.Contains(r.IMDS.Decision, tc.decision) {
			t.Errorf("%s: probed %v, decision %q", tc.name, r.IMDS.Probed, r.IMDS.Decision)
		}
		got := append(findings(&r, Problem, "imds"), findings(&r, Warning, "imds")...)
		if tc.finding == "" && len(got) != 0 || tc.finding != "" && (len(got) != 1 || !strings.Contains(got[0], tc.finding)) {
			t.Errorf("%s: findings %q, want %q", tc.name, got, tc.finding)
		}
	}
}

// TestIMDSTokenNeverShown: the session token appears nowhere in the report.
func TestIMDSTokenNeverShown(t *testing.T) {
	t.Parallel()
	const secret = "AQAEAKw-secret-token-value"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == tokenPath:
			ttl := r.Header.Get(tokenTTLHeader)
			if ttl == "" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.Header().Set(tokenTTLHeader, ttl)
			w.Write([]byte(secret))
		case r.Header.Get("X-aws-ec2-metadata-token") != secret:
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == metaPrefix+pathInstanceID:
			w.Write([]byte("i-1"))
		case r.URL.Path == metaPrefix+pathLifeCycle:
			w.Write([]byte("spot"))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	cfg := baseConfig(t, nil)
	cfg.IMDS, cfg.Endpoint = interruption.On, srv.URL
	r := Run(context.Background(), cfg)
	if r.IMDS.LifeCycle != "spot" || !r.OK() {
		t.Fatalf("life cycle %q:\n%s", r.IMDS.LifeCycle, dump(&r))
	}
	var text, js strings.Builder
	r.WriteText(&text)
	r.WriteJSON(&js)
	if strings.Contains(text.String()+js.String(), secret) {
		t.Errorf("the token is in the report")
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(js.String()), &doc); err != nil {
		t.Fatal(err)
	}
}

// TestIMDSTokenWithoutTTL: a token answered without its lifetime header is
// one the watcher's SDK refuses, so every run would fail to read: a problem,
// not "ready". The same server with the header is healthy (the control).
func TestIMDSTokenWithoutTTL(t *testing.T) {
	t.Parallel()
	for _, ttl := range []string{"", "sixty", "21600"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodPut && r.URL.Path == tokenPath:
				if ttl != "" {
					w.Header().Set(tokenTTLHeader, ttl)
				}
				w.Write([]byte("a-token"))
			case r.URL.Path == metaPrefix+"autoscaling/target-lifecycle-state":
				w.Write([]byte("InService"))
			case r.URL.Path == metaPrefix+"instance-id":
				w.Write([]byte("i-0123456789abcdef0"))
			case r.URL.Path == metaPrefix+"instance-life-cycle":
				w.Write([]byte("spot"))
			default:
				http.NotFound(w, r)
			}
		}))
		cfg := baseConfig(t, nil)
		cfg.IMDS = interruption.On
		cfg.Endpoint = srv.URL
		r := Run(context.Background(), cfg)
		srv.Close()
		if ttl == "21600" {
			if !r.OK() || len(r.IMDS.Paths) == 0 {
				t.Errorf("with the header, the check should pass:\n%s", dump(&r))
			}
			continue
		}
		wantFinding(t, &r, Problem, "imds", "without a valid X-aws-ec2-metadata-token-ttl-seconds header", "the watcher cannot use the token")
		if r.OK() || len(r.IMDS.Paths) != 0 || !strings.Contains(r.IMDS.Decision, "not usable") {
			t.Errorf("ttl %q: the check passed or read on:\n%s", ttl, dump(&r))
		}
	}
}
