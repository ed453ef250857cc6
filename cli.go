package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spotinit/spotinit/earlysignal"
	"github.com/spotinit/spotinit/hooks"
	"github.com/spotinit/spotinit/interruption"
	"github.com/spotinit/spotinit/reaper"
	"github.com/spotinit/spotinit/simulator"
	"github.com/spotinit/spotinit/supervisor"
	"github.com/urfave/cli/v2"
)

// exitUsage is the exit status of spotinit's own errors (bad option, no
// command): everything else is the app's, or 126/127 for exec failures.
const exitUsage = 125

const usageLine = "spotinit [OPTIONS] [--] COMMAND [ARG...]"

// version is stamped at build time with -ldflags "-X main.version=...".
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// usageError is a mistake on the command line or in the environment: it
// is reported with the usage line and exit status 125.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// envName is the environment variable of an option: SPOTINIT_ and the name
// in upper snake case.
func envName(flag string) string {
	return "SPOTINIT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func env(flag string) []string { return []string{envName(flag)} }

// The option names and their environment variables are a contract users
// script against: never rename them.
func flags() []cli.Flag {
	fs := []cli.Flag{
		&cli.StringFlag{Name: "stop-timeout", EnvVars: env("stop-timeout"), Value: "30s",
			Usage: "grace the container runtime gives between its SIGTERM and its SIGKILL (`D`: 45s, 1m30s or seconds)"},
		&cli.StringFlag{Name: "kill-margin", EnvVars: env("kill-margin"), Value: "2s",
			Usage: "send SIGKILL this long (`D`) before the stop timeout ends"},
		&cli.BoolFlag{Name: "single-child", EnvVars: env("single-child"),
			Usage: "forward signals to the child only, not its whole process group"},
		&cli.StringSliceFlag{Name: "rewrite", EnvVars: env("rewrite"),
			Usage: "rewrite a forwarded signal, e.g. TERM:QUIT; TO of 0 drops it (`FROM:TO`, repeatable; env comma-separated)"},
		&cli.BoolFlag{Name: "no-wait", EnvVars: env("no-wait"),
			Usage: "exit as soon as the child has exited, without waiting for the rest of the tree"},
		&cli.StringFlag{Name: "log-format", EnvVars: env("log-format"), Value: "text",
			Usage: "log format on stderr: text or json"},
		&cli.StringFlag{Name: "log-level", EnvVars: env("log-level"), Value: "info",
			Usage: "log level: debug, info, warn or error"},

		// Interruption notices.
		&cli.StringFlag{Name: "imds", EnvVars: env("imds"), Value: "auto",
			Usage: "watch the EC2 instance metadata service: auto, on or off"},
		&cli.StringFlag{Name: "imds-endpoint", EnvVars: env("imds-endpoint"),
			Usage: "IMDS base `URL` (default: AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254)"},
		&cli.StringFlag{Name: "imds-poll-interval", EnvVars: env("imds-poll-interval"), Value: "2s",
			Usage: "how often to check spot/instance-action (`D`, ±10% jitter)"},
		&cli.StringFlag{Name: "notices", EnvVars: env("notices"), Value: "spot,asg",
			Usage: "notices to act on, comma-separated: spot, asg, rebalance, scheduled"},
		&cli.StringFlag{Name: "hibernate", EnvVars: env("hibernate"), Value: "hooks",
			Usage: "what a Spot hibernate notice does: hooks (run them, keep the child), stop, or ignore"},
		&cli.StringFlag{Name: "stale-after", EnvVars: env("stale-after"), Value: "5m",
			Usage: "ignore a Spot notice whose time lies more than `D` before spotinit started (0: never)"},
		&cli.StringFlag{Name: "scheduled-lead", EnvVars: env("scheduled-lead"), Value: "5m",
			Usage: "act on a scheduled maintenance event this long (`D`) before its NotBefore"},
		&cli.BoolFlag{Name: "scheduled-reboot", EnvVars: env("scheduled-reboot"),
			Usage: "also act on scheduled reboot events (stop and retirement events always act)"},
		&cli.StringFlag{Name: "notice-signal", EnvVars: env("notice-signal"),
			Usage: "also send `SIG` (e.g. USR1) to the child when a notice arrives"},
		&cli.StringFlag{Name: "notice-file", EnvVars: env("notice-file"),
			Usage: "write each notice as JSON to `PATH`, atomically, for apps without IMDS access"},
		&cli.BoolFlag{Name: "stop-on-notice", EnvVars: env("stop-on-notice"),
			Usage: "stop the child after the pre-stop hooks when a notice arrives (EC2 without ECS draining)"},
		&cli.StringFlag{Name: "simulate-notice", EnvVars: env("simulate-notice"),
			Usage: "rehearse: serve a local IMDS that announces a Spot terminate `D` after start, and watch it"},

		// Hooks. The two command lists are newline-separated in the
		// environment (commands contain commas), so they are read by hand.
		&cli.StringSliceFlag{Name: "pre-stop",
			Usage: "run `CMD` with /bin/sh -c before the child is stopped (repeatable; env SPOTINIT_PRE_STOP, one per line)"},
		&cli.StringFlag{Name: "pre-stop-dir", EnvVars: env("pre-stop-dir"),
			Usage: "also run every executable in `DIR`, in lexical order, directly (works in FROM scratch images)"},
		&cli.StringSliceFlag{Name: "on-rebalance",
			Usage: "run `CMD` once on a rebalance recommendation (repeatable; env SPOTINIT_ON_REBALANCE, one per line)"},
		&cli.StringFlag{Name: "hook-timeout", EnvVars: env("hook-timeout"), Value: "30s",
			Usage: "time limit of each hook (`D`); hooks also end by the stop deadline"},
		&cli.BoolFlag{Name: "pre-stop-parallel", EnvVars: env("pre-stop-parallel"),
			Usage: "on SIGTERM, signal the child at once and run the pre-stop hooks alongside"},
	}
	for i, f := range fs {
		fs[i] = cachedNames(f)
	}
	return fs
}

// cachedNames wraps a flag so that its names are computed once. urfave/cli
// computes them with a regexp on every call and, at each run, looks every
// flag up by name for every flag: with spotinit's 28 options that was 0.4 ms
// of start-up (perf).
func cachedNames(f cli.Flag) cli.Flag {
	names := f.Names()
	switch f := f.(type) {
	case *cli.StringFlag:
		return stringFlag{f, names}
	case *cli.BoolFlag:
		return boolFlag{f, names}
	case *cli.StringSliceFlag:
		return sliceFlag{f, names}
	}
	return f
}

type (
	stringFlag struct {
		*cli.StringFlag
		names []string
	}
	boolFlag struct {
		*cli.BoolFlag
		names []string
	}
	sliceFlag struct {
		*cli.StringSliceFlag
		names []string
	}
)

func (f stringFlag) Names() []string { return f.names }
func (f boolFlag) Names() []string   { return f.names }
func (f sliceFlag) Names() []string  { return f.names }

// run is the whole program; only main calls os.Exit with its result.
func run(args []string) int {
	code := 0
	app := newApp(func(c *cli.Context) error {
		if c.NArg() == 0 {
			// The full usage, but on stderr: stdout is the app's.
			c.App.Writer = os.Stderr
			_ = cli.ShowAppHelp(c)
			return usagef("no command given")
		}
		code = action(c)
		return nil
	})
	if err := app.Run(args); err != nil {
		return reportError(os.Stderr, err)
	}
	return code
}

// newApp is spotinit's command line, running act once the options are
// parsed.
func newApp(act cli.ActionFunc) *cli.App {
	return &cli.App{
		Name:            "spotinit",
		Usage:           "an init for containers on EC2 Spot: reaps, forwards signals, runs pre-stop hooks, stops before the deadline",
		UsageText:       usageLine,
		Version:         buildVersion(),
		Flags:           flags(),
		HideHelpCommand: true, // "spotinit help" runs a program named help
		// A hook command is one value however many commas it holds
		// (--pre-stop 'echo a, b'); --rewrite splits its own lists.
		DisableSliceFlagSeparator: true,
		Writer:                    os.Stdout,
		ErrWriter:                 os.Stderr,
		// urfave/cli would otherwise call os.Exit itself.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		Action: act,
	}
}

// reportError prints err the way spotinit reports its own errors and
// returns exit status 125.
func reportError(w io.Writer, err error) int {
	fmt.Fprintf(w, "spotinit: error: %s\n", oneLine(friendly(err.Error())))
	fmt.Fprintf(w, "usage: %s\nspotinit: hint: run 'spotinit --help' for the options\n", usageLine)
	return exitUsage
}

// friendly rewrites the flag package's wording for unknown options.
func friendly(msg string) string {
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return "unknown option --" + strings.TrimPrefix(name, "-")
	}
	return msg
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

// setup is everything the options decide.
type setup struct {
	log      *slog.Logger
	sup      supervisor.Config
	watch    interruption.Config
	simulate time.Duration // > 0: serve a local IMDS announcing a Spot notice this long after start
}

// action runs once the options are parsed.
func action(c *cli.Context) int {
	start := time.Now()
	st, err := configure(c, c.Args().Slice())
	if err != nil {
		return reportError(os.Stderr, err)
	}
	log := st.log
	// One P: spotinit waits for signals, exits and a poll every few
	// seconds, and never has two things to compute at once. With more, every
	// goroutine woken (by a SIGCHLD, say) also wakes an idle thread to look
	// for work that is not there: that halved the CPU spotinit spends per
	// reaped orphan. GOMAXPROCS in the environment still wins (the runtime
	// reads it; the child inherits it as it is).
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	// Collect when the heap has grown by a fifth, not doubled: spotinit's
	// live heap is a few hundred KiB, but each IMDS poll round allocates
	// about 16 KiB, and at the default the first collection waits for 4 MiB
	// of garbage, which stays resident as anonymous memory (what the
	// container's limit pays for). Over a soak this keeps anonymous memory
	// flat near 3 MiB instead of climbing past 5; the extra collections of
	// so small a heap cost too little CPU per poll to measure. GOGC in the
	// environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(20)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	r, err := reaper.New(reaper.Config{Log: log, ForkAround: earlysignal.AsInherited})
	if err != nil {
		log.Warn("orphans will not be reaped here", "err", err)
	}
	reaped := make(chan struct{})
	go func() { defer close(reaped); r.Run(ctx) }()
	defer func() { cancel(); <-reaped }()
	st.sup.Reaper = r

	if st.simulate > 0 {
		sim, err := simulator.Start(ctx, "127.0.0.1:0", simulator.Scenario{Spot: &simulator.SpotNotice{After: st.simulate}}, log)
		if err != nil {
			fmt.Fprintf(os.Stderr, "spotinit: error: --simulate-notice: %v\n", err)
			return exitUsage
		}
		defer sim.Close()
		st.watch.Mode, st.watch.Endpoint = interruption.On, sim.URL()
		if !containsKind(st.watch.Kinds, interruption.Spot) {
			st.watch.Kinds = append(st.watch.Kinds, interruption.Spot)
		}
	}
	st.watch.Start = start
	st.sup.Notices = interruption.Watch(ctx, st.watch)
	earlysignal.Ready() // every signal registered before the child exists
	res, err := supervisor.Run(ctx, st.sup)
	if err != nil {
		var se *supervisor.StartError
		if errors.As(err, &se) {
			fmt.Fprintf(os.Stderr, "spotinit: error: %s\n", oneLine(se.Error()))
			return se.Code
		}
		return reportError(os.Stderr, err)
	}
	return res.Code
}

func containsKind(ks []interruption.Kind, k interruption.Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// configure checks every option and turns them into the packages' configs;
// any mistake is a usageError naming the option and the value, found before
// the child is started.
func configure(c *cli.Context, argv []string) (setup, error) {
	var st setup
	var err error
	if st.log, err = newLogger(c.String("log-format"), c.String("log-level")); err != nil {
		return st, err
	}
	d := durations{c: c}
	stop := d.get("stop-timeout")
	margin := d.get("kill-margin")
	poll := d.get("imds-poll-interval")
	stale := d.get("stale-after")
	lead := d.get("scheduled-lead")
	hookTimeout := d.get("hook-timeout")
	simulate := d.get("simulate-notice")
	if d.err != nil {
		return st, d.err
	}
	switch {
	case stop == 0:
		return st, usagef("--stop-timeout %s: must be more than 0", c.String("stop-timeout"))
	case margin >= stop:
		return st, usagef("--kill-margin %s: must be shorter than --stop-timeout %s", c.String("kill-margin"), c.String("stop-timeout"))
	case poll < 100*time.Millisecond:
		return st, usagef("--imds-poll-interval %s: must be at least 100ms", c.String("imds-poll-interval"))
	case hookTimeout == 0:
		return st, usagef("--hook-timeout %s: must be more than 0", c.String("hook-timeout"))
	case c.IsSet("simulate-notice") && simulate == 0:
		return st, usagef("--simulate-notice %s: must be more than 0", c.String("simulate-notice"))
	}
	rewrite, err := rewriteOption(c.StringSlice("rewrite"))
	if err != nil {
		return st, err
	}

	mode, err := interruption.ParseMode(c.String("imds"))
	if err != nil {
		return st, usagef("--imds %q: want auto, on or off", c.String("imds"))
	}
	endpoint := c.String("imds-endpoint")
	if endpoint != "" {
		if err := interruption.CheckEndpoint(endpoint); err != nil {
			return st, usagef("--imds-endpoint %q: want an http URL like http://169.254.169.254", endpoint)
		}
	}
	kinds, err := interruption.ParseKinds(c.String("notices"))
	if err != nil {
		return st, usagef("--notices %q: %v", c.String("notices"), err)
	}
	hibernate, err := supervisor.ParseHibernate(c.String("hibernate"))
	if err != nil {
		return st, usagef("--hibernate %q: %v", c.String("hibernate"), err)
	}
	var noticeSig syscall.Signal
	if s := c.String("notice-signal"); s != "" {
		if noticeSig, err = supervisor.ParseSignal(s); err != nil {
			return st, usagef("--notice-signal %q: %v", s, err)
		}
	}
	noticeFile := c.String("notice-file")
	if noticeFile != "" {
		if err := checkParentDir(noticeFile); err != nil {
			return st, usagef("--notice-file %q: %v", noticeFile, err)
		}
	}

	preStop := listOption(c, "pre-stop")
	onRebalance := listOption(c, "on-rebalance")
	preStopDir := c.String("pre-stop-dir")
	if preStopDir != "" {
		if err := hooks.CheckDir(preStopDir); err != nil {
			return st, usagef("--pre-stop-dir %q: %v", preStopDir, err)
		}
	}
	if len(preStop)+len(onRebalance) > 0 {
		if err := hooks.CheckShell(); err != nil {
			return st, usagef("--pre-stop/--on-rebalance commands need /bin/sh: %v", err)
		}
	}

	var hookOut io.Writer // nil: spotinit's stderr, each line prefixed
	if strings.EqualFold(c.String("log-format"), "json") {
		hookOut = hookLog{st.log} // a JSON log stays JSON, hook output included
	}
	st.simulate = simulate
	st.sup = supervisor.Config{
		HookOutput:      hookOut,
		Argv:            argv,
		StopTimeout:     stop,
		KillMargin:      margin,
		SingleChild:     c.Bool("single-child"),
		NoWait:          c.Bool("no-wait"),
		Rewrite:         rewrite,
		Log:             st.log,
		PreStop:         hooks.Commands("pre-stop", preStop),
		PreStopDir:      preStopDir,
		OnRebalance:     hooks.Commands("on-rebalance", onRebalance),
		HookTimeout:     hookTimeout,
		PreStopParallel: c.Bool("pre-stop-parallel"),
		NoticeSignal:    noticeSig,
		NoticeFile:      noticeFile,
		StopOnNotice:    c.Bool("stop-on-notice"),
		Hibernate:       hibernate,
	}
	st.watch = interruption.Config{
		Mode:            mode,
		Endpoint:        endpoint,
		Kinds:           kinds,
		PollInterval:    poll,
		StaleAfter:      stale,
		DefaultLead:     stop,
		ScheduledLead:   lead,
		ScheduledReboot: c.Bool("scheduled-reboot"),
		Log:             st.log,
	}
	if stale == 0 {
		st.watch.StaleAfter = 100 * 365 * 24 * time.Hour // 0: no notice is too old
	}
	return st, nil
}

// hookLog turns the hooks' output lines ("hook NAME: text") into log
// records, for --log-format json.
type hookLog struct{ log *slog.Logger }

func (h hookLog) Write(p []byte) (int, error) {
	line := strings.TrimSuffix(string(p), "\n")
	name, text, _ := strings.Cut(strings.TrimPrefix(line, "hook "), ": ")
	h.log.Info("hook output", "hook", name, "line", text)
	return len(p), nil
}

// listOption returns a repeatable option's values, or else its
// environment variable's lines (blank lines skipped).
func listOption(c *cli.Context, name string) []string {
	if c.IsSet(name) {
		return nonBlank(c.StringSlice(name))
	}
	return nonBlank(strings.Split(os.Getenv(envName(name)), "\n"))
}

// nonBlank drops blank entries (a trailing newline in the environment, an
// empty --pre-stop value).
func nonBlank(values []string) []string {
	var out []string
	for _, v := range values {
		if v = strings.TrimRight(v, "\r"); strings.TrimSpace(v) != "" {
			out = append(out, v)
		}
	}
	return out
}

// checkParentDir reports whether the directory a file would go in exists.
func checkParentDir(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// maxDuration bounds every duration option: anything longer is a typo, and
// Kubernetes' longest grace periods are hours, not days.
const maxDuration = 24 * time.Hour

// durations reads duration options, keeping the first error.
type durations struct {
	c   *cli.Context
	err error
}

func (d *durations) get(name string) time.Duration {
	s := d.c.String(name)
	if d.err != nil || s == "" {
		return 0
	}
	v, err := parseDuration(s)
	if err != nil {
		d.err = usagef("--%s %q: %v", name, s, err)
	}
	return v
}

// parseDuration accepts Go durations ("45s", "1m30s") and a bare number of
// seconds ("30", "2.5"), as ECS users write them. Negative and absurdly long
// values are refused.
func parseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty duration")
	}
	var d time.Duration
	if f, err := strconv.ParseFloat(t, 64); err == nil && !strings.ContainsAny(t, "eEnNxXpP") {
		if f < 0 || f > maxDuration.Seconds() {
			return 0, fmt.Errorf("want 0 to %s", maxDuration)
		}
		d = time.Duration(f * float64(time.Second))
	} else {
		var err error
		d, err = time.ParseDuration(t)
		if err != nil {
			return 0, errors.New("want a duration like 30s or 1m30s, or a number of seconds")
		}
	}
	if d < 0 || d > maxDuration {
		return 0, fmt.Errorf("want 0 to %s", maxDuration)
	}
	return d, nil
}

func rewriteOption(specs []string) (map[syscall.Signal]syscall.Signal, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	m := make(map[syscall.Signal]syscall.Signal)
	for _, v := range specs {
		// Each value, from the command line or SPOTINIT_REWRITE, may be
		// a comma-separated list.
		for spec := range strings.SplitSeq(v, ",") {
			from, to, err := supervisor.ParseRewrite(strings.TrimSpace(spec))
			if err != nil {
				return nil, usagef("--rewrite: %v", err)
			}
			m[from] = to
		}
	}
	return m, nil
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "info":
		lv = slog.LevelInfo
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, usagef("--log-format %q: want text or json", format)
	}
}
