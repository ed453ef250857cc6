package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spotinit/spotinit/earlysignal"
	"github.com/spotinit/spotinit/hooks"
	"github.com/spotinit/spotinit/internal/atomicfile"
	"github.com/spotinit/spotinit/internal/interp"
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

// usageError is a mistake on the command line or in the environment: it
// is reported as one error line, then a hint line when there is one, with
// exit status 125.
type usageError struct {
	err  error
	hint string
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{err: fmt.Errorf(format, args...)}
}

// withHint gives a usage error its hint line.
func withHint(err error, format string, args ...any) error {
	ue, ok := err.(usageError)
	if !ok {
		ue = usageError{err: err}
	}
	ue.hint = fmt.Sprintf(format, args...)
	return ue
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
		&cli.StringFlag{Name: "forward-delay", EnvVars: env("forward-delay"), Value: "0s",
			Usage: "hold the child's first stop signal for `D` after the pre-stop hooks (after the stop signal when none run first) so a load balancer stops sending traffic first; the child keeps min(5s, a quarter) of the stop's time, and a second stop signal ends the delay"},
		&cli.StringSliceFlag{Name: "exit-map", EnvVars: env("exit-map"),
			Usage: "exit with TO when the child's status is FROM, e.g. 143:0 for a JVM's clean exit on SIGTERM; FROM 128+N is death by signal N, 137 after spotinit's own SIGKILL included (`FROM:TO`, 0-255, repeatable; env comma-separated)"},
		&cli.StringFlag{Name: "parent-death-signal", EnvVars: env("parent-death-signal"),
			Usage: "have the kernel send spotinit `SIG` when its parent dies: TERM or INT starts the stop sequence, KILL ends spotinit, the others are forwarded"},
		&cli.StringFlag{Name: "child-death-signal", EnvVars: env("child-death-signal"), Value: "TERM",
			Usage: "the child and each hook receive `SIG` if spotinit dies (SIGKILL, the OOM killer) when it is not PID 1, rather than run on unsupervised; 0: none"},
		&cli.StringFlag{Name: "log-format", EnvVars: env("log-format"), Value: "text",
			Usage: "`FORMAT` of the log on stderr: text or json"},
		&cli.StringFlag{Name: "log-level", EnvVars: env("log-level"), Value: "info",
			Usage: "`LEVEL` of the log: debug, info, warn or error; debug adds a line per forwarded signal, per reaped orphan (tini -w) and per IMDS request"},
		// No environment variable: a SPOTINIT_CHECK left in an image or a
		// task definition would replace the app with a diagnosis for good.
		&cli.BoolFlag{Name: "check",
			Usage: "diagnose instead of starting COMMAND: role, platform and stop timeout, IMDS, hooks; report on stdout, exit 0 if a graceful stop is in place, else 1"},

		// Interruption notices.
		&cli.StringFlag{Name: "imds", EnvVars: env("imds"), Value: "auto",
			Usage: "watch the EC2 instance metadata service (`MODE`): auto, on or off"},
		&cli.StringFlag{Name: "imds-endpoint", EnvVars: env("imds-endpoint"),
			Usage: "IMDS base `URL` (default: AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254)"},
		&cli.StringFlag{Name: "imds-poll-interval", EnvVars: env("imds-poll-interval"), Value: "2s",
			Usage: "how often to check spot/instance-action (`D`, ±10% jitter); on a 401 a new token is fetched at once, on a 429 or 5xx the reads back off with jitter but never leave more than 10s between two, and each fault is logged once"},
		&cli.StringFlag{Name: "notices", EnvVars: env("notices"), Value: "spot,asg",
			Usage: "notices to act on, a comma-separated `LIST` of spot, asg, rebalance, scheduled; when not given, --on-rebalance, --scheduled-reboot, --scheduled-lead and --simulate-notice add the ones they need"},
		&cli.StringFlag{Name: "hibernate", EnvVars: env("hibernate"), Value: "hooks",
			Usage: "what a Spot hibernate notice does (`MODE`): hooks (run them, keep the child), stop, or ignore"},
		&cli.StringFlag{Name: "stale-after", EnvVars: env("stale-after"), Value: "5m",
			Usage: "ignore a Spot notice whose time lies more than `D` before spotinit started (0: never)"},
		&cli.StringFlag{Name: "scheduled-lead", EnvVars: env("scheduled-lead"), Value: "5m",
			Usage: "act on a scheduled maintenance event this long (`D`) before its NotBefore"},
		&cli.BoolFlag{Name: "scheduled-reboot", EnvVars: env("scheduled-reboot"),
			Usage: "also act on scheduled reboot events (stop and retirement events always act)"},
		&cli.StringFlag{Name: "notice-signal", EnvVars: env("notice-signal"),
			Usage: "also send `SIG` (e.g. USR1; not KILL or STOP, which no program can catch) to the child when a notice arrives"},
		&cli.StringFlag{Name: "notice-file", EnvVars: env("notice-file"),
			Usage: "write each notice as JSON to `PATH`, atomically, for apps without IMDS access"},
		&cli.StringFlag{Name: "report-file", EnvVars: env("report-file"),
			Usage: "also write the stop report as one JSON document to `PATH`, atomically, for log shippers and sidecars"},
		&cli.BoolFlag{Name: "stop-on-notice", EnvVars: env("stop-on-notice"),
			Usage: "stop the child after the pre-stop hooks when a notice arrives (EC2 without ECS draining)"},
		&cli.StringFlag{Name: "simulate-notice", EnvVars: env("simulate-notice"),
			Usage: "rehearse: serve a local IMDS that follows `SCENARIO` and watch it instead of the real one (so not with --imds off or --imds-endpoint): a duration D, a Spot terminate D after start, or the simulator's scenario text, e.g. 'rebalance=2s; spot=10s,action=stop', 'asg=3s', 'spot=1s,action=hibernate', 'scheduled=instance-stop@+10m'"},

		// Hooks. The two command lists are newline-separated in the
		// environment (commands contain commas).
		&cli.StringSliceFlag{Name: "pre-stop", EnvVars: env("pre-stop"),
			Usage: "run `CMD` with /bin/sh -c before the child is stopped (repeatable; in the environment, one per line)"},
		&cli.StringFlag{Name: "pre-stop-dir", EnvVars: env("pre-stop-dir"),
			Usage: "also run every file in `DIR`, in lexical order, directly (works in FROM scratch images); each must be executable, names starting with . are skipped"},
		&cli.StringSliceFlag{Name: "on-rebalance", EnvVars: env("on-rebalance"),
			Usage: "run `CMD` once on a rebalance recommendation (repeatable; in the environment, one per line)"},
		&cli.StringFlag{Name: "hook-timeout", EnvVars: env("hook-timeout"), Value: "30s",
			Usage: "time limit of each hook (`D`); hooks also end by the stop deadline"},
		&cli.BoolFlag{Name: "pre-stop-parallel", EnvVars: env("pre-stop-parallel"),
			Usage: "on SIGTERM, signal the child at once and run the pre-stop hooks alongside (needs --pre-stop or --pre-stop-dir)"},
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

// Apply registers a flag without urfave/cli's own reading of its
// environment variable, which --help still shows: configure reads the
// variables itself, so that an empty one means "not set" for every option
// and an error names the variable the value came from.
func (f stringFlag) Apply(set *flag.FlagSet) error {
	defer withoutEnv(&f.EnvVars)()
	return f.StringFlag.Apply(set)
}

func (f boolFlag) Apply(set *flag.FlagSet) error {
	defer withoutEnv(&f.EnvVars)()
	return f.BoolFlag.Apply(set)
}

func (f sliceFlag) Apply(set *flag.FlagSet) error {
	defer withoutEnv(&f.EnvVars)()
	return f.StringSliceFlag.Apply(set)
}

// withoutEnv empties a flag's variable list until the returned function
// puts it back.
func withoutEnv(vars *[]string) func() {
	saved := *vars
	*vars = nil
	return func() { *vars = saved }
}

// run is the whole program; only main calls os.Exit with its result.
func run(args []string) int {
	code := 0
	app := newApp(func(c *cli.Context) error {
		if c.NArg() == 0 && !c.Bool("check") {
			return withHint(usagef("no command given"), "%s; run 'spotinit --help' for the options", usageLine)
		}
		code = action(c)
		return nil
	})
	if helpAsked(args[1:]) {
		// urfave/cli would take the command after -h as a help topic and
		// fail ("No help topic for 'true'"): the help is all there is.
		args = []string{args[0], "--help"}
	}
	if err := app.Run(args); err != nil {
		return reportError(os.Stderr, explain(err, args[1:]))
	}
	return code
}

// helpAsked reports whether -h or --help is among spotinit's own options
// in args, the options before the command, read by the flag package as
// urfave/cli reads them: a -h that is an option's value or the child's
// argument does not count. Options before one that fails to parse count.
func helpAsked(args []string) bool {
	// Most runs name no help option: skip the second parse.
	if !slices.ContainsFunc(args, func(a string) bool {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		return strings.HasPrefix(a, "-") && (name == "h" || name == "help")
	}) {
		return false
	}
	set := flag.NewFlagSet("spotinit", flag.ContinueOnError)
	set.SetOutput(io.Discard)
	help := &cli.BoolFlag{Name: "help", Aliases: []string{"h"}}
	for _, f := range append(flags(), versionFlag(), help) {
		if err := f.Apply(set); err != nil {
			return false
		}
	}
	_ = set.Parse(args) // app.Run reports the error
	return set.Lookup("help").Value.String() == "true"
}

// newApp is spotinit's command line, running act once the options are
// parsed.
func newApp(act cli.ActionFunc) *cli.App {
	return &cli.App{
		Name:            "spotinit",
		Usage:           "an init for containers on EC2 Spot: reaps, forwards signals, runs pre-stop hooks, stops before the deadline",
		UsageText:       usageLine,
		Flags:           append(flags(), versionFlag()),
		HideHelpCommand: true, // "spotinit help" runs a program named help
		// A hook command is one value however many commas it holds
		// (--pre-stop 'echo a, b'); --rewrite splits its own lists.
		DisableSliceFlagSeparator: true,
		Writer:                    os.Stdout,
		ErrWriter:                 os.Stderr,
		// urfave/cli would otherwise call os.Exit itself.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err: err}
		},
		// --version is spotinit's own (version.go): it reports the build
		// as well as the version.
		HideVersion: true,
		Action: func(c *cli.Context) error {
			if c.Bool("version") {
				thisBuild().write(c.App.Writer)
				return nil
			}
			return act(c)
		},
	}
}

// reportError prints err the way spotinit reports its own errors, one
// error line and at most one hint line, and returns exit status 125.
func reportError(w io.Writer, err error) int {
	fmt.Fprintf(w, "spotinit: error: %s\n", oneLine(err.Error()))
	var ue usageError
	if errors.As(err, &ue) && ue.hint != "" {
		fmt.Fprintf(w, "spotinit: hint: %s\n", oneLine(ue.hint))
	}
	return exitUsage
}

// The flag package's errors, which urfave/cli passes on.
var (
	errUnknown  = regexp.MustCompile(`^flag provided but not defined: (-.*)$`)
	errNeedsArg = regexp.MustCompile(`^flag needs an argument: (-.*)$`)
	errBadBool  = regexp.MustCompile(`^invalid boolean value (".*") for (-[^:]*): `)
	errSyntax   = regexp.MustCompile(`^bad flag syntax: (.*)$`)
)

// explain rewrites the flag package's errors in spotinit's words, naming
// an option as the user wrote it (-x or --x) in args.
func explain(err error, args []string) error {
	msg := err.Error()
	hint := func(e error) error { return withHint(e, "run 'spotinit --help' for the options") }
	if m := errUnknown.FindStringSubmatch(msg); m != nil {
		return hint(usagef("unknown option %s", asWritten(m[1], args)))
	}
	if m := errNeedsArg.FindStringSubmatch(msg); m != nil {
		return hint(usagef("option %s needs a value", asWritten(m[1], args)))
	}
	if m := errBadBool.FindStringSubmatch(msg); m != nil {
		return usagef("%s %s: %s", asWritten(m[2], args), m[1], wantBool)
	}
	if m := errSyntax.FindStringSubmatch(msg); m != nil {
		return hint(usagef("unknown option %s", m[1]))
	}
	return err
}

// asWritten finds how the user wrote the option that the flag package
// calls name ("-x"): "-x" or "--x", before any "=value".
func asWritten(name string, args []string) string {
	bare := strings.TrimLeft(name, "-")
	for _, a := range args {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		opt, _, _ := strings.Cut(a, "=")
		if strings.TrimLeft(opt, "-") == bare {
			return opt
		}
	}
	return "--" + bare
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

// setup is everything the options decide.
type setup struct {
	log        logs
	jsonLogs   bool   // --log-format json
	reportFile string // --report-file: the stop report as JSON, written atomically
	sup        supervisor.Config
	watch      interruption.Config
	simulate   *simulator.Scenario // non-nil: serve a local IMDS following it (--simulate-notice)
	notes      []note              // logged once the options are all accepted

	parentDeath syscall.Signal // --parent-death-signal; 0: none
	childDeath  syscall.Signal // --child-death-signal; 0: none
}

// note is a log record about the options: a setting spotinit completed,
// or one that may not act yet.
type note struct {
	level slog.Level
	msg   string
	args  []any
}

// action runs once the options are parsed.
func action(c *cli.Context) int {
	start := time.Now()
	st, err := configure(c, c.Args().Slice())
	if err != nil {
		return reportError(os.Stderr, err)
	}
	if c.Bool("check") {
		return check(st, st.jsonLogs, os.Stdout)
	}
	tuneRuntime()
	log := st.log.Logger
	if st.parentDeath != 0 {
		if err := watchParent(st.parentDeath, log); err != nil {
			return reportError(os.Stderr, fmt.Errorf("--parent-death-signal: %w", err))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	// quiet stops everything that logs beside the supervisor and waits for
	// each to finish, so that the stop report is the last record: the
	// reaper, the simulator, and the IMDS watcher (its channel closes once
	// its goroutine has returned).
	var waits []func()
	quiet := func() {
		cancel()
		for _, wait := range waits {
			wait()
		}
		waits = nil
	}
	defer quiet()
	for _, n := range st.notes {
		log.Log(ctx, n.level, n.msg, n.args...)
	}

	r, err := reaper.New(reaper.Config{Log: log, ForkAround: earlysignal.AsInherited, DeathSignal: st.childDeath})
	if err != nil {
		log.Warn("orphans will not be reaped here", "err", err)
	}
	reaped := make(chan struct{})
	go func() { defer close(reaped); r.Run(ctx) }()
	waits = append(waits, func() { <-reaped })
	st.sup.Reaper = r

	if st.simulate != nil {
		sim, err := simulator.Start(ctx, "127.0.0.1:0", *st.simulate, log)
		if err != nil {
			return reportError(os.Stderr, fmt.Errorf("--simulate-notice: %w", err))
		}
		waits = append(waits, func() { sim.Close() })
		st.watch.Endpoint = sim.URL()
	}
	st.watch.Start = start
	notices := interruption.Watch(ctx, st.watch)
	waits = append(waits, func() {
		for range notices { // what the supervisor did not take
		}
	})
	st.sup.Notices = notices
	earlysignal.Ready() // every signal registered before the child exists
	res, err := supervisor.Run(ctx, st.sup)
	quiet()
	if err != nil {
		var se *supervisor.StartError
		if errors.As(err, &se) {
			fmt.Fprintf(os.Stderr, "spotinit: error: %s\n", oneLine(se.Error()))
			return se.Code
		}
		return reportError(os.Stderr, err)
	}
	stopReport(st.log, st.reportFile, res.Report, res.Code)
	return res.Code
}

// gcPercent and maxProcs are spotinit's own runtime settings (tuneRuntime).
// They are variables only so that a benchmark build can try others:
// go build -ldflags "-X main.gcPercent=100 -X main.maxProcs=2"
// (docs/performance.md).
var (
	gcPercent = "20"
	maxProcs  = "1"
)

// tuneRuntime sets spotinit's own runtime settings. They do not follow
// GOMAXPROCS and GOGC in the environment: those are there for the app, which
// gets them as they are (GOGC=off for a batch job must not let spotinit's
// heap grow without bound).
func tuneRuntime() {
	// One P: spotinit waits for signals, exits and a poll every few
	// seconds, and never has two things to compute at once. With more, every
	// goroutine woken (by a SIGCHLD, say) also wakes an idle thread to look
	// for work that is not there: that halved the CPU spotinit spends per
	// reaped orphan (docs/performance.md).
	if n, err := strconv.Atoi(maxProcs); err == nil && n > 0 {
		runtime.GOMAXPROCS(n)
	}
	// Collect when the heap has grown by a fifth, not doubled: spotinit's
	// live heap is a few hundred KiB, but each IMDS poll round allocates
	// about 16 KiB, and at the default the first collection waits for 4 MiB
	// of garbage, which stays resident as anonymous memory (what the
	// container's limit pays for). Over a soak this keeps anonymous memory
	// flat near 3 MiB instead of climbing past 5; the extra collections of
	// so small a heap cost too little CPU per poll to measure.
	if n, err := strconv.Atoi(gcPercent); err == nil {
		debug.SetGCPercent(n)
	}
}

// option is one setting as the user gave it, kept to name it in messages
// the way it was written.
type option struct {
	name   string   // the flag's name: "stop-timeout"
	src    string   // "--stop-timeout" or "SPOTINIT_STOP_TIMEOUT"; "" when the default applies
	value  string   // the value given (the first, for a repeatable option), or the default
	values []string // every value given, for a repeatable option
	isBool bool
}

// given reports whether the user set the option, on the command line or
// in the environment.
func (o option) given() bool { return o.src != "" }

// acts reports whether the option was given and asks for something: a
// boolean that is true, a value that is not blank.
func (o option) acts() bool {
	switch {
	case !o.given():
		return false
	case o.isBool:
		return o.value == "true"
	case o.values != nil:
		return len(nonBlank(o.values)) > 0
	}
	return strings.TrimSpace(o.value) != ""
}

// String names the option and its value as the user wrote them:
// --notice-signal "USR1", SPOTINIT_NOTICE_SIGNAL="USR1", or the bare flag
// of a boolean.
func (o option) String() string {
	switch {
	case !o.given():
		return fmt.Sprintf("--%s %q (the default)", o.name, o.value)
	case strings.HasPrefix(o.src, "-") && o.isBool && o.value == "true":
		return o.src
	case strings.HasPrefix(o.src, "-"):
		return fmt.Sprintf("%s %q", o.src, o.value)
	}
	return fmt.Sprintf("%s=%q", o.src, o.value)
}

// bad is the usage error for o: o, then what is wrong with it.
func bad(o option, format string, args ...any) error {
	return usagef("%s: %s", o, fmt.Sprintf(format, args...))
}

// readOptions reads every option: a flag on the command line wins; then
// its environment variable, unless that is empty or blank (such a variable
// means "not set", for every option); then the default. The environment itself
// is left as it is: the child gets it exactly as spotinit did.
func readOptions(c *cli.Context, environ []string) map[string]option {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if _, dup := env[k]; !dup {
				env[k] = v // the first wins, as with os.Getenv
			}
		}
	}
	opts := make(map[string]option)
	for _, f := range c.App.Flags {
		name := f.Names()[0]
		var vars []string
		o := option{name: name}
		switch f := f.(type) {
		case stringFlag:
			o.value, vars = c.String(name), f.EnvVars
		case boolFlag:
			o.value, o.isBool, vars = strconv.FormatBool(c.Bool(name)), true, f.EnvVars
		case sliceFlag:
			vars = f.EnvVars
		default:
			continue // --help, --version
		}
		switch {
		case c.IsSet(name):
			o.src = "--" + name
			if _, ok := f.(sliceFlag); ok {
				o.values = append([]string{}, c.StringSlice(name)...)
				if len(o.values) > 0 {
					o.value = o.values[0]
				}
			}
		case len(vars) > 0 && strings.TrimSpace(env[vars[0]]) != "":
			o.src, o.value = vars[0], env[vars[0]]
			if _, ok := f.(sliceFlag); ok {
				o.values = []string{o.value}
			}
		}
		opts[name] = o
	}
	return opts
}

// settings are the options, read and each parsed, before the rules (see
// rules.go) look at them together.
type settings struct {
	opts map[string]option

	stop, margin, poll, stale, lead, hookTimeout, forwardDelay time.Duration

	singleChild, noWait, scheduledReboot, stopOnNotice, preStopParallel bool

	rewrite    map[syscall.Signal]syscall.Signal
	mode       interruption.Mode
	endpoint   string
	kinds      []interruption.Kind
	hibernate  supervisor.Hibernate
	noticeSig  syscall.Signal
	noticeFile string
	reportFile string
	scenario   *simulator.Scenario

	exitMap                 map[int]int
	parentDeath, childDeath syscall.Signal

	preStop, onRebalance []string
	preStopDir           string

	// check: --check, which reports what the image holds (the notice
	// file's directory, the hook directory, /bin/sh) as findings instead
	// of refusing it.
	check bool
	// getenv reads the environment spotinit was given.
	getenv func(string) string

	turnedOn, turnedOnBy []string // notices other options turned on, and those options
	notes                []note
}

// opt returns the option called name.
func (s *settings) opt(name string) option { return s.opts[name] }

// configure checks every option and turns them into the packages' configs;
// any mistake is a usageError naming the option as the user wrote it and
// its value, found before the child is started.
func configure(c *cli.Context, argv []string) (setup, error) {
	return configureEnv(c, argv, os.Environ())
}

// configureEnv is configure with the environment given.
func configureEnv(c *cli.Context, argv, environ []string) (setup, error) {
	var st setup
	s := &settings{opts: readOptions(c, environ), getenv: envLookup(environ)}
	format, level := s.opt("log-format"), s.opt("log-level")
	log, err := newLogs(os.Stderr, format.value, level.value)
	if err != nil {
		// newLogs names the flag; name what the user wrote instead, in
		// the logger's own words for what is wanted.
		o := level
		if _, ferr := newLogs(io.Discard, format.value, "info"); ferr != nil {
			o, err = format, ferr
		}
		_, why, _ := strings.Cut(err.Error(), ": ")
		return st, bad(o, "%s", why)
	}
	if err := s.parse(); err != nil {
		return st, err
	}
	for _, r := range rules {
		if err := r.check(s); err != nil {
			return st, err
		}
	}
	st.log = log
	st.notes = append(s.notes, unknownVariables(c.App.Flags, environ)...)

	st.simulate = s.scenario
	st.reportFile = s.reportFile
	st.jsonLogs = strings.EqualFold(strings.TrimSpace(format.value), "json")
	st.sup = supervisor.Config{
		HookOutput:      hookLog{st.log.Logger}, // every line spotinit writes is a record
		Argv:            argv,
		StopTimeout:     s.stop,
		KillMargin:      s.margin,
		SingleChild:     s.singleChild,
		NoWait:          s.noWait,
		Rewrite:         s.rewrite,
		Log:             st.log.Logger,
		PreStop:         hooks.Commands("pre-stop", s.preStop),
		PreStopDir:      s.preStopDir,
		OnRebalance:     hooks.Commands("on-rebalance", s.onRebalance),
		HookTimeout:     s.hookTimeout,
		PreStopParallel: s.preStopParallel,
		NoticeSignal:    s.noticeSig,
		NoticeFile:      s.noticeFile,
		StopOnNotice:    s.stopOnNotice,
		Hibernate:       s.hibernate,
		ForwardDelay:    s.forwardDelay,
		ExitMap:         s.exitMap,
	}
	st.parentDeath, st.childDeath = s.parentDeath, s.childDeath
	st.watch = interruption.Config{
		Mode:            s.mode,
		Endpoint:        s.endpoint,
		Kinds:           s.kinds,
		PollInterval:    s.poll,
		StaleAfter:      s.stale,
		DefaultLead:     s.stop,
		ScheduledLead:   s.lead,
		ScheduledReboot: s.scheduledReboot,
		Log:             st.log.Logger,
		// The simulator has no rate limit: a rehearsal reads every path
		// every --imds-poll-interval, so each notice is seen within one.
		EveryPathAtPollInterval: s.scenario != nil,
	}
	if s.stale == 0 {
		st.watch.StaleAfter = 100 * 365 * 24 * time.Hour // 0: no notice is too old
	}
	return st, nil
}

// wantBool says which values a boolean option takes.
const wantBool = "want true or false (or 1 or 0)"

// parse parses each option's value on its own; the first bad value is the
// error.
func (s *settings) parse() error {
	var err error
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{
		{"stop-timeout", &s.stop}, {"kill-margin", &s.margin}, {"imds-poll-interval", &s.poll},
		{"stale-after", &s.stale}, {"scheduled-lead", &s.lead}, {"hook-timeout", &s.hookTimeout},
		{"forward-delay", &s.forwardDelay},
	} {
		o := s.opt(d.name)
		if *d.to, err = parseDuration(o.value); err != nil {
			return bad(o, "%v", err)
		}
	}
	switch {
	case s.stop == 0:
		return bad(s.opt("stop-timeout"), "must be more than 0")
	case s.poll < 100*time.Millisecond:
		return bad(s.opt("imds-poll-interval"), "must be at least 100ms")
	case s.hookTimeout == 0:
		return bad(s.opt("hook-timeout"), "must be more than 0")
	}
	for _, b := range []struct {
		name string
		to   *bool
	}{
		{"single-child", &s.singleChild}, {"no-wait", &s.noWait}, {"scheduled-reboot", &s.scheduledReboot},
		{"stop-on-notice", &s.stopOnNotice}, {"pre-stop-parallel", &s.preStopParallel},
		{"check", &s.check},
	} {
		o := s.opt(b.name)
		v, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(o.value)))
		if err != nil {
			return bad(o, wantBool)
		}
		*b.to = v
		o.value = strconv.FormatBool(v)
		s.opts[b.name] = o
	}
	if s.rewrite, err = rewriteOption(s.opt("rewrite")); err != nil {
		return err
	}
	if s.exitMap, err = exitMapOption(s.opt("exit-map")); err != nil {
		return err
	}
	o := s.opt("parent-death-signal")
	if o.value != "" {
		if s.parentDeath, err = parseParentDeathSignal(o.value); err != nil {
			return bad(o, "%v", err)
		}
	}
	o = s.opt("child-death-signal")
	if s.childDeath, err = parseChildDeathSignal(o.value); err != nil {
		return bad(o, "%v", err)
	}

	o = s.opt("imds")
	if s.mode, err = interruption.ParseMode(o.value); err != nil {
		return bad(o, "want auto, on or off")
	}
	// The option, else the SDK's variable (empty means unset): a bad value
	// is refused naming the one the user wrote. The variable only matters,
	// and is only checked, when IMDS is watched; the option always.
	o = s.opt("imds-endpoint")
	endpoint, from, err := interruption.ResolveEndpoint(o.value, s.getenv)
	switch {
	case err != nil && from == interruption.EndpointConfigured:
		return bad(o, "want an http URL like http://169.254.169.254")
	case err != nil && from == interruption.EndpointFromEnv && s.mode != interruption.Off:
		return usagef("%s=%q: want an http URL like http://169.254.169.254", interruption.EndpointEnv, endpoint)
	case from == interruption.EndpointConfigured:
		s.endpoint = endpoint
	}
	o = s.opt("notices")
	if s.kinds, err = interruption.ParseKinds(o.value); err != nil {
		return bad(o, "%v", err)
	}
	o = s.opt("hibernate")
	if s.hibernate, err = supervisor.ParseHibernate(o.value); err != nil {
		return bad(o, "%v", err)
	}
	if o = s.opt("notice-signal"); o.value != "" {
		if s.noticeSig, err = supervisor.ParseSignal(o.value); err != nil {
			return bad(o, "%v", err)
		}
		if s.noticeSig == syscall.SIGKILL || s.noticeSig == syscall.SIGSTOP {
			// The kernel lets no program catch these two, so the child
			// could never checkpoint on it: SIGKILL would end it, SIGSTOP
			// freeze it, at the first notice.
			return withHint(bad(o, "no program can catch %s, so the child cannot act on it", supervisor.SignalName(s.noticeSig)),
				"use a signal the app handles, such as USR1")
		}
	}
	if o = s.opt("notice-file"); o.value != "" {
		if err := atomicfile.CheckDir(o.value, "spotinit-notice"); err != nil && !s.check {
			return bad(o, "%v", err)
		}
		s.noticeFile = o.value
	}
	if o = s.opt("report-file"); o.value != "" {
		if err := atomicfile.CheckDir(o.value, "spotinit-report"); err != nil && !s.check {
			return bad(o, "%v", err)
		}
		s.reportFile = o.value
	}
	if o = s.opt("simulate-notice"); o.given() {
		if s.scenario, err = rehearsal(o); err != nil {
			return err
		}
	}

	s.preStop = hookList(s.opt("pre-stop"))
	s.onRebalance = hookList(s.opt("on-rebalance"))
	if o = s.opt("pre-stop-dir"); o.value != "" {
		if err := s.checkHookDir(o); err != nil && !s.check {
			return err
		}
		s.preStopDir = o.value
	}
	if len(s.preStop)+len(s.onRebalance) > 0 && !s.check {
		if err := hooks.CheckShell(); err != nil {
			return s.noShell(err)
		}
	}
	return nil
}

// noShell is the error when command hooks are given but /bin/sh cannot run
// them (err says why), with the way out that fits the option: a pre-stop
// command can become a file in --pre-stop-dir, but those run only at a
// stop, never on a rebalance, so --on-rebalance needs the shell.
func (s *settings) noShell(err error) error {
	if len(s.onRebalance) == 0 {
		return withHint(bad(s.opt("pre-stop"), "commands need /bin/sh: %v", err),
			"put the hook in --pre-stop-dir as an executable file: those run without a shell")
	}
	hint := "add /bin/sh to the image: --on-rebalance commands run only with it (--pre-stop-dir hooks never run on a rebalance)"
	if len(s.preStop) > 0 {
		hint += "; --pre-stop commands can instead go in --pre-stop-dir as executable files"
	}
	return withHint(bad(s.opt("on-rebalance"), "commands need /bin/sh: %v", err), "%s", hint)
}

// envLookup reads environ as os.Getenv reads the process's environment.
func envLookup(environ []string) func(string) string {
	return func(name string) string {
		for _, kv := range environ {
			if k, v, ok := strings.Cut(kv, "="); ok && k == name {
				return v
			}
		}
		return ""
	}
}

// rehearsal parses --simulate-notice: a duration, in spotinit's syntax, is
// a Spot terminate that long after start; anything else is the simulator's
// scenario text.
func rehearsal(o option) (*simulator.Scenario, error) {
	v := strings.TrimSpace(o.value)
	if d, err := parseDuration(v); err == nil {
		if d == 0 {
			// 0 reads as "off" as much as "at once": say which to write.
			return nil, withHint(bad(o, "want more than 0"), "for a notice at once write spot=0s; to rehearse nothing, leave the option out")
		}
		return &simulator.Scenario{Spot: &simulator.SpotNotice{After: d}}, nil
	}
	if !strings.Contains(v, "=") {
		return nil, bad(o, "want a duration like 30s, or a scenario like 'rebalance=2s; spot=10s,action=stop'")
	}
	sc, err := simulator.ParseScenario(v)
	if err != nil {
		return nil, bad(o, "%v", err)
	}
	return &sc, nil
}

// hookList returns a repeatable hook option's commands: each value given
// on the command line, or the lines of its variable; blank ones skipped.
func hookList(o option) []string {
	if strings.HasPrefix(o.src, "-") {
		return nonBlank(o.values)
	}
	return nonBlank(strings.Split(o.value, "\n"))
}

// checkHookDir checks --pre-stop-dir at start-up. A directory that cannot
// be listed, and any entry in it that cannot run (a file that is not
// executable, a special file, a dangling link, a script whose #!
// interpreter is missing), are refused: an image does not fix itself, and
// the mistake would otherwise surface at the first interruption. A directory with nothing to run yet is only a warning: it
// may be a volume that is filled later. The directory is listed again when
// the hooks run.
func (s *settings) checkHookDir(o option) error {
	if err := hooks.CheckDir(o.value); err != nil {
		return bad(o, "%v", err)
	}
	list, skipped, err := hooks.Dir(o.value)
	if err != nil {
		return bad(o, "%v", err)
	}
	if len(skipped) > 0 {
		return withHint(bad(o, "%v%s", skipped[0], andMore(len(skipped))),
			"every file in the directory is run, except names starting with \".\": make it executable (chmod +x, COPY --chmod=755) or move it out")
	}
	// A hook whose #! interpreter or ELF loader the image lacks (a
	// #!/bin/sh script in a FROM scratch image) fails as surely.
	var missing []error
	for _, h := range list {
		if why := interp.Missing(h.Path); why != nil {
			missing = append(missing, fmt.Errorf("%s: %w", h.Path, why))
		}
	}
	if len(missing) > 0 {
		return withHint(bad(o, "%v%s", missing[0], andMore(len(missing))),
			"install the interpreter in the image, change the #! line to one the image has, or make the hook a static binary")
	}
	if len(list) == 0 {
		s.notes = append(s.notes, note{slog.LevelWarn, "pre-stop directory has no hooks yet",
			[]any{"dir", o.value, "hint", "it is listed again when the hooks run"}})
	}
	return nil
}

// andMore is " (and N more)" after the first of n problems, or "".
func andMore(n int) string {
	if n < 2 {
		return ""
	}
	return fmt.Sprintf(" (and %d more)", n-1)
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

// maxDuration bounds every duration option: anything longer is a typo, and
// Kubernetes' longest grace periods are hours, not days.
const maxDuration = 24 * time.Hour

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

// rewriteOption parses --rewrite. Each FROM must be a signal that spotinit
// catches and forwards (supervisor.Forwarded): a rewrite of any other could
// never act. A FROM given twice, or rewritten to itself, is refused too.
func rewriteOption(o option) (map[syscall.Signal]syscall.Signal, error) {
	if len(o.values) == 0 {
		return nil, nil
	}
	m := make(map[syscall.Signal]syscall.Signal)
	for _, v := range o.values {
		// Each value, from the command line or SPOTINIT_REWRITE, may be
		// a comma-separated list; a message names the one rewrite at
		// fault when the value holds several.
		specs := strings.Split(v, ",")
		given := o
		given.value = v
		for _, spec := range specs {
			spec = strings.TrimSpace(spec)
			if spec == "" && len(specs) > 1 {
				continue // "TERM:INT," as "TERM:INT", as --notices takes "spot,"
			}
			fail := func(format string, args ...any) error {
				msg := fmt.Sprintf(format, args...)
				if len(specs) > 1 {
					msg = fmt.Sprintf("rewrite %q: %s", spec, msg)
				}
				return bad(given, "%s", msg)
			}
			from, to, err := supervisor.ParseRewrite(spec)
			if err != nil {
				return nil, fail("%s", strings.TrimPrefix(err.Error(), fmt.Sprintf("rewrite %q: ", spec)))
			}
			switch prev, dup := m[from]; {
			case !supervisor.Forwarded(from):
				return nil, withHint(fail("spotinit does not forward %s, so it can never rewrite it", supervisor.SignalName(from)),
					"FROM is one of the signals spotinit forwards: %s", forwardedNames())
			case to == from:
				return nil, fail("rewrites %s to itself", supervisor.SignalName(from))
			case dup && prev != to:
				return nil, fail("%s is already rewritten to %s", supervisor.SignalName(from), rewriteTarget(prev))
			}
			m[from] = to
		}
	}
	return m, nil
}

// forwardedNames lists the signals spotinit forwards, from the
// supervisor's own table.
func forwardedNames() string {
	var names []string
	for n := 1; n <= 64; n++ {
		if sig := syscall.Signal(n); supervisor.Forwarded(sig) {
			names = append(names, strings.TrimPrefix(supervisor.SignalName(sig), "SIG"))
		}
	}
	return strings.Join(names, ", ")
}

func rewriteTarget(to syscall.Signal) string {
	if to == 0 {
		return "0 (dropped)"
	}
	return supervisor.SignalName(to)
}
