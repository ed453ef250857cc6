package preflight

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/spotinit/spotinit/hooks"
	"github.com/spotinit/spotinit/interruption"
)

// Config is what a spotinit started with the same options would use. The
// zero value of each field has a useful meaning, given beside it.
type Config struct {
	// LookupEnv reads the environment (the platform's variables, IMDS's,
	// PATH); nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)

	// StopTimeout and KillMargin are --stop-timeout and --kill-margin.
	StopTimeout time.Duration
	KillMargin  time.Duration

	// IMDS is --imds; Endpoint is --imds-endpoint ("" means
	// AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254);
	// Kinds are --notices (empty: nothing is watched).
	IMDS     interruption.Mode
	Endpoint string
	Kinds    []interruption.Kind
	// PollInterval is --imds-poll-interval, shown beside the endpoint.
	PollInterval time.Duration
	// StaleAfter is --stale-after: an active Spot notice whose time lies
	// further back is reported as a leftover. Zero means never.
	StaleAfter time.Duration
	// Simulated is --simulate-notice: the run would watch a local
	// simulator, not the instance's IMDS, which is then not probed.
	Simulated bool

	// PreStop and OnRebalance are the command hooks (their Path is the
	// shell); PreStopDir is --pre-stop-dir; NoticeFile is --notice-file
	// and ReportFile --report-file.
	PreStop     []hooks.Hook
	OnRebalance []hooks.Hook
	PreStopDir  string
	NoticeFile  string
	ReportFile  string

	// Argv is the child's command; empty means none was given, and it is
	// not checked.
	Argv []string

	// HTTPClient, when set, is used for IMDS (tests); nil means a client
	// of the package's own that never uses a proxy.
	HTTPClient *http.Client

	// Test seams; zero means the real thing.
	root         string       // prefix of the platform's marker files (/.dockerenv, /proc/self/cgroup, ...)
	getpid       func() int   // os.Getpid
	setSubreaper func() error // probes PR_SET_CHILD_SUBREAPER
	now          func() time.Time
	probeTimeout time.Duration // how long one IMDS request may take before it counts as hanging
}

// IMDS timing. The watcher gives each request one second (interruption's
// requestTimeout); the check waits twice that before it calls a request
// hanging, so that it can tell "slower than the watcher allows" from "no
// answer at all", and runs the reads side by side after the token, so
// that the whole probe takes at most two such waits.
const (
	watcherRequestTimeout = time.Second
	defaultProbeTimeout   = 2 * watcherRequestTimeout
	slowAnswer            = watcherRequestTimeout / 2
)

// Spot's two minutes: an instance is reclaimed this long after its
// interruption notice, whatever any stop timeout says.
const spotNotice = 2 * time.Minute

// Severity grades a finding.
type Severity string

// The severities. Any Problem makes the check fail (exit status 1); a
// Warning is worth reading but a graceful stop does not depend on it.
const (
	Problem Severity = "problem"
	Warning Severity = "warning"
)

// Finding is one thing the user should know, with what to do about it.
type Finding struct {
	Severity Severity `json:"severity"`
	// Area is the part of the report it belongs to: role, platform,
	// timing, imds, hooks or command.
	Area    string `json:"area"`
	Message string `json:"message"`
	// Fix says what to change; "" when there is nothing to change.
	Fix string `json:"fix,omitempty"`
}

// Report is what Run found.
type Report struct {
	Role     RoleReport     `json:"role"`
	Platform PlatformReport `json:"platform"`
	Timing   TimingReport   `json:"timing"`
	IMDS     IMDSReport     `json:"imds"`
	// Hooks has one entry per command hook, per file of --pre-stop-dir
	// (or one for the directory itself when it cannot be listed) and one
	// each for --notice-file and --report-file, in that order.
	Hooks   []ExecReport `json:"hooks"`
	Command ExecReport   `json:"command"`
	// Findings lists every problem and warning, problems first.
	Findings []Finding `json:"findings"`
}

// OK reports whether nothing stands in the way of a graceful stop: no
// finding is a Problem.
func (r *Report) OK() bool { return r.count(Problem) == 0 }

func (r *Report) count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

func (r *Report) add(s Severity, area, msg, fix string) {
	r.Findings = append(r.Findings, Finding{Severity: s, Area: area, Message: msg, Fix: fix})
}

// Duration is a time.Duration that reads as Go writes it ("30s", "1.2ms")
// in the text report, and in JSON is a number of seconds, as every duration
// in spotinit's logs and stop report is (to the microsecond here: an IMDS
// round trip takes well under a millisecond).
type Duration time.Duration

// String writes the duration as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a number of seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(d).Round(time.Microsecond).Seconds(), 'f', -1, 64), nil
}

// Run looks at everything cfg relies on and reports. It returns within a
// few seconds however IMDS behaves (sooner when ctx ends; what was not
// looked at by then is reported as not checked), and never starts a
// process or sends a signal.
func Run(ctx context.Context, cfg Config) Report {
	cfg.defaults()
	var r Report
	r.Role = checkRole(&cfg, &r)
	r.Platform = detectPlatform(&cfg)
	imds := checkIMDS(ctx, &cfg, &r)
	r.IMDS = imds
	r.Timing = checkTiming(&cfg, &r)
	checkHooks(&cfg, &r)
	r.Command = checkCommand(&cfg, &r)
	// Problems first, each group in the order found.
	var sorted []Finding
	for _, s := range []Severity{Problem, Warning} {
		for _, f := range r.Findings {
			if f.Severity == s {
				sorted = append(sorted, f)
			}
		}
	}
	r.Findings = sorted
	return r
}

func (cfg *Config) defaults() {
	if cfg.LookupEnv == nil {
		cfg.LookupEnv = os.LookupEnv
	}
	if cfg.getpid == nil {
		cfg.getpid = os.Getpid
	}
	if cfg.setSubreaper == nil {
		cfg.setSubreaper = probeSubreaper
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.probeTimeout <= 0 {
		cfg.probeTimeout = defaultProbeTimeout
	}
	if cfg.root == "" {
		cfg.root = "/"
	}
}

// getenv is LookupEnv's value, "" when unset.
func (cfg *Config) getenv(k string) string {
	v, _ := cfg.LookupEnv(k)
	return v
}
