// Command bench measures spotinit side by side with tini, dumb-init and
// catatonit, on one machine in one run, and prints a markdown table on
// stdout (progress goes to stderr).
//
// Run it as root from the repository root, after building spotinit the way
// users do:
//
//	CGO_ENABLED=0 go build -trimpath -tags urfave_cli_no_docs -ldflags="-s -w -E=_spotinit_rt0" -o spotinit .
//	go run ./bench -short              # two to three minutes, for development
//	go run ./bench > perf.md           # the full run: about 35 minutes, most of it the soak
//
// Every init runs as PID 1 of a new PID namespace (CLONE_NEWPID, which
// needs root) and as a plain process. The machines this runs on are shared
// and noisy, so every timing is the median of many pairs run in alternation
// (baseline, init; then init, baseline; …), each pair giving a difference
// against a baseline measured in the same run, never a lone absolute time.
// The children are tiny C programs compiled at bench time (see helpers.go),
// so that the child's own cost stays out of the figures.
//
// It never contacts the real IMDS: spotinit runs with --imds off (and
// AWS_EC2_METADATA_DISABLED=true), or with --imds on against a fake served
// in-process on 127.0.0.1 by package simulator.
//
// As root on Debian it installs the peers (apt-get install -y tini
// dumb-init catatonit) when they are missing; peers that are still missing
// are reported as n/a.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if isHelper(os.Args[0]) {
		os.Exit(goHelper(os.Args))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// The figures, in the order they run and appear.
var allFigures = []string{"size", "startup", "forward", "idle", "zombies", "reapcpu", "kill", "notice", "soak"}

type config struct {
	spotinit   string
	peerPath   map[string]string
	inits      []string
	figures    map[string]bool
	short      bool
	pairs      int
	idleRuns   int
	idle       time.Duration
	orphans    []int
	zombieRuns int
	burst      int
	spread     time.Duration
	reapRuns   int
	killRuns   int
	noticeRuns int
	polls      []time.Duration
	soak       time.Duration
	spotEnv    []string
	install    bool
	verbose    bool
	args       []string
}

func parseFlags(args []string, errw io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(errw)
	var (
		c       config
		inits   = fs.String("inits", "spotinit,tini,dumb-init,catatonit", "inits to measure, comma-separated")
		figures = fs.String("figures", strings.Join(allFigures, ","), "figures to measure, comma-separated: "+strings.Join(allFigures, ", "))
		tini    = fs.String("tini", "", "tini binary (default: tini-static, else tini, on PATH)")
		dumb    = fs.String("dumb-init", "", "dumb-init binary (default: on PATH)")
		cata    = fs.String("catatonit", "", "catatonit binary (default: on PATH)")
		orphans = fs.String("orphans", "1000,10000", "orphan counts for the zombie figure, comma-separated")
		polls   = fs.String("poll", "2s,1s", "IMDS poll intervals for the notice figure, comma-separated")
		spotEnv = fs.String("spotinit-env", "", "extra environment for spotinit only, comma-separated KEY=VALUE (e.g. GOMAXPROCS=1, to try a runtime setting without rebuilding)")
	)
	fs.StringVar(&c.spotinit, "spotinit", "./spotinit", "spotinit binary, built as the README says")
	fs.BoolVar(&c.short, "short", false, "few repetitions, for development (about a minute in all)")
	fs.IntVar(&c.pairs, "pairs", 0, "alternating pairs per timing (default 200, or 40 with -short)")
	fs.IntVar(&c.idleRuns, "idle-runs", 0, "runs of the idle/memory figure (default 3, or 1 with -short)")
	fs.DurationVar(&c.idle, "idle", 10*time.Second, "window of the idle CPU and wake-up figure")
	fs.IntVar(&c.zombieRuns, "zombie-runs", 0, "runs per orphan count (default 5, or 1 with -short)")
	fs.IntVar(&c.burst, "burst", 5000, "orphans in the burst of the reaping-CPU figure")
	fs.DurationVar(&c.spread, "spread", time.Second, "second variant of the reaping-CPU figure: the burst's exits spread evenly over this long (0: leave it out)")
	fs.IntVar(&c.reapRuns, "reap-runs", 0, "runs of the reaping-CPU figure (default 5, or 2 with -short)")
	fs.IntVar(&c.killRuns, "kill-runs", 0, "runs of the SIGKILL timing figure (default 15, or 4 with -short)")
	fs.IntVar(&c.noticeRuns, "notice-runs", 0, "runs per poll interval of the notice figure (default 24, or 8 with -short)")
	fs.DurationVar(&c.soak, "soak", 0, "how long spotinit polls the fake IMDS in the memory soak (default 30m, or 1m with -short); it runs beside the other figures")
	fs.BoolVar(&c.install, "install", true, "as root on Debian, apt-get install the peers that are missing")
	fs.BoolVar(&c.verbose, "v", false, "progress detail, and the inits' stderr, on stderr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.args = args
	c.inits = splitList(*inits)
	c.figures = map[string]bool{}
	for _, f := range splitList(*figures) {
		known := false
		for _, a := range allFigures {
			known = known || a == f
		}
		if !known {
			return c, fmt.Errorf("unknown figure %q (known: %s)", f, strings.Join(allFigures, ", "))
		}
		c.figures[f] = true
	}
	for _, n := range c.inits {
		switch n {
		case "spotinit", "tini", "dumb-init", "catatonit":
		default:
			return c, fmt.Errorf("unknown init %q", n)
		}
	}
	for _, kv := range splitList(*spotEnv) {
		if !strings.Contains(kv, "=") {
			return c, fmt.Errorf("bad -spotinit-env entry %q: want KEY=VALUE", kv)
		}
		c.spotEnv = append(c.spotEnv, kv)
	}
	c.peerPath = map[string]string{"tini": *tini, "dumb-init": *dumb, "catatonit": *cata}
	for _, s := range splitList(*orphans) {
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil || n < 1 {
			return c, fmt.Errorf("bad orphan count %q", s)
		}
		c.orphans = append(c.orphans, n)
	}
	for _, s := range splitList(*polls) {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("bad poll interval %q", s)
		}
		c.polls = append(c.polls, d)
	}
	def := func(v *int, full, short int) {
		if *v <= 0 {
			*v = full
			if c.short {
				*v = short
			}
		}
	}
	if c.soak <= 0 {
		c.soak = 30 * time.Minute
		if c.short {
			c.soak = time.Minute
		}
	}
	def(&c.pairs, 200, 40)
	def(&c.idleRuns, 3, 1)
	def(&c.zombieRuns, 5, 1)
	def(&c.reapRuns, 5, 2)
	def(&c.killRuns, 15, 4)
	def(&c.noticeRuns, 24, 8)
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// bench is one run's state.
type bench struct {
	cfg     config
	tmp     string
	h       *helpers
	inits   []*initSpec
	canPID1 bool
	devnull *os.File
	stderr  *os.File // the inits' stderr
	track   *tracker
	rep     *report
	errw    io.Writer
	seq     atomic.Int64 // names temporary files
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.errw, "bench: "+format+"\n", args...)
}

func (b *bench) debugf(format string, args ...any) {
	if b.cfg.verbose {
		b.logf(format, args...)
	}
}

func run(args []string, out, errw io.Writer) int {
	cfg, err := parseFlags(args, errw)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintf(errw, "bench: error: %v\n", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	b := &bench{cfg: cfg, track: &tracker{live: map[int]bool{}}, errw: errw}
	// An interrupted run kills what it started, PID 1 namespaces included.
	stopKill := context.AfterFunc(ctx, b.track.killAll)
	defer stopKill()
	if err := b.setup(); err != nil {
		fmt.Fprintf(errw, "bench: error: %v\n", err)
		return 1
	}
	defer b.cleanup()
	b.measure(ctx)
	if ctx.Err() != nil {
		fmt.Fprintln(errw, "bench: interrupted")
		return 130
	}
	b.rep.write(out, b)
	return 0
}

func (b *bench) setup() error {
	var err error
	b.tmp, err = os.MkdirTemp("", "spotbench")
	if err != nil {
		return err
	}
	if b.devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
		return err
	}
	b.stderr = b.devnull
	if b.cfg.verbose {
		b.stderr = os.Stderr
	}
	if b.cfg.install {
		installPeers(b.logf)
	}
	if b.h, err = buildHelpers(b.tmp); err != nil {
		return fmt.Errorf("build the helper children: %w", err)
	}
	b.logf("children: %s, in %s", b.h.kind, b.tmp)
	b.inits = findInits(b.cfg.spotinit, b.cfg.peerPath, b.cfg.inits)
	for _, s := range b.inits {
		if s.name == "spotinit" && !s.ok() {
			b.logf("hint: build it first, from the repository root: CGO_ENABLED=0 go build -trimpath -tags urfave_cli_no_docs -ldflags=\"-s -w -E=_spotinit_rt0\" -o spotinit .")
			return fmt.Errorf("no spotinit binary at %s", b.cfg.spotinit)
		}
	}
	b.canPID1 = b.probePID1()
	if !b.canPID1 {
		b.logf("cannot create PID namespaces (not root?): PID 1 figures are n/a")
	}
	b.rep = newReport(b)
	return nil
}

// probePID1 checks that a child can be started as PID 1 of a new namespace.
func (b *bench) probePID1() bool {
	pid, err := b.spawn([]string{b.h.path(hStamp)}, baseEnv(), pid1, nil)
	if err != nil {
		return false
	}
	ws, err := b.reap(pid)
	return err == nil && ws.Exited() && ws.ExitStatus() == 0
}

func (b *bench) cleanup() {
	b.track.killAll()
	if b.devnull != nil {
		b.devnull.Close()
	}
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
}

// measure runs the chosen figures in order; the soak runs beside them.
func (b *bench) measure(ctx context.Context) {
	var soakDone chan struct{}
	if b.cfg.figures["soak"] {
		soakDone = make(chan struct{})
		go func() {
			defer close(soakDone)
			b.figSoak(ctx)
		}()
	}
	steps := []struct {
		name string
		f    func(context.Context)
	}{
		{"size", b.figSize},
		{"startup", b.figStartup},
		{"forward", b.figForward},
		{"idle", b.figIdle},
		{"zombies", b.figZombies},
		{"reapcpu", b.figReapCPU},
		{"kill", b.figKill},
		{"notice", b.figNotice},
	}
	for _, s := range steps {
		if !b.cfg.figures[s.name] || ctx.Err() != nil {
			continue
		}
		began := time.Now()
		b.logf("%s: measuring (load %.2f)", s.name, loadavg())
		s.f(ctx)
		b.logf("%s: done in %s", s.name, time.Since(began).Round(100*time.Millisecond))
	}
	if soakDone != nil {
		b.logf("soak: waiting for it to finish")
		<-soakDone
	}
}

// target is one init in one mode.
type target struct {
	init *initSpec
	mode mode
}

func (t target) String() string { return t.init.name + " (" + t.mode.String() + ")" }

// targets lists the available (init, mode) pairs among modes.
func (b *bench) targets(modes ...mode) []target {
	var out []target
	for _, m := range modes {
		if m == pid1 && !b.canPID1 {
			continue
		}
		for _, s := range b.inits {
			if s.ok() {
				out = append(out, target{s, m})
			}
		}
	}
	return out
}

// The environments the children get. IMDS is off unless a figure serves a
// fake on 127.0.0.1.
func baseEnv() []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LC_ALL=C",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

func imdsEnv(url string) []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LC_ALL=C",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + url,
	}
}

// envFor is env with -spotinit-env added when s is spotinit.
func (b *bench) envFor(s *initSpec, env []string) []string {
	if s.name != "spotinit" || len(b.cfg.spotEnv) == 0 {
		return env
	}
	return append(append([]string(nil), env...), b.cfg.spotEnv...)
}

// spotOff are spotinit's options with IMDS off.
var spotOff = []string{"--imds", "off"}
