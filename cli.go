package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spotinit/spotinit/earlysignal"
	"github.com/spotinit/spotinit/reaper"
	"github.com/spotinit/spotinit/supervisor"
	"github.com/urfave/cli/v2"
)

// Exit statuses of spotinit's own: everything else is the app's.
const (
	exitUsage = 125 // bad option, no command, spotinit's own failure
)

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

// exitError carries an exit status out of the cli Action.
type exitError struct{ code int }

func (e exitError) Error() string { return "exit " + strconv.Itoa(e.code) }

// The option names and their environment variables are a contract users
// script against: never rename them.
func flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "stop-timeout", EnvVars: []string{"SPOTINIT_STOP_TIMEOUT"}, Value: "30s",
			Usage: "grace the container runtime gives between its SIGTERM and its SIGKILL (`D`: 45s, 1m30s or seconds)"},
		&cli.StringFlag{Name: "kill-margin", EnvVars: []string{"SPOTINIT_KILL_MARGIN"}, Value: "2s",
			Usage: "send SIGKILL this long (`D`) before the stop timeout ends"},
		&cli.BoolFlag{Name: "single-child", EnvVars: []string{"SPOTINIT_SINGLE_CHILD"},
			Usage: "forward signals to the child only, not its whole process group"},
		&cli.StringSliceFlag{Name: "rewrite", EnvVars: []string{"SPOTINIT_REWRITE"},
			Usage: "rewrite a forwarded signal, e.g. TERM:QUIT; TO of 0 drops it (`FROM:TO`, repeatable; env comma-separated)"},
		&cli.BoolFlag{Name: "no-wait", EnvVars: []string{"SPOTINIT_NO_WAIT"},
			Usage: "exit as soon as the child has exited, without waiting for the rest of the tree"},
		&cli.StringFlag{Name: "log-format", EnvVars: []string{"SPOTINIT_LOG_FORMAT"}, Value: "text",
			Usage: "log format on stderr: text or json"},
		&cli.StringFlag{Name: "log-level", EnvVars: []string{"SPOTINIT_LOG_LEVEL"}, Value: "info",
			Usage: "log level: debug, info, warn or error"},
	}
}

// run is the whole program; only main calls os.Exit with its result.
func run(args []string) int {
	code := 0
	app := &cli.App{
		Name:            "spotinit",
		Usage:           "an init for containers on EC2 Spot: reaps, forwards signals, stops before the deadline",
		UsageText:       usageLine,
		Version:         buildVersion(),
		Flags:           flags(),
		HideHelpCommand: true, // "spotinit help" runs a program named help
		Writer:          os.Stdout,
		ErrWriter:       os.Stderr,
		// urfave/cli would otherwise call os.Exit itself.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		Action: func(c *cli.Context) error {
			code = action(c)
			return nil
		},
	}
	if err := app.Run(args); err != nil {
		return reportError(os.Stderr, err)
	}
	return code
}

// reportError prints err the way spotinit reports its own errors and
// returns the exit status for it.
func reportError(w io.Writer, err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(w, "spotinit: error: %s\n", oneLine(err.Error()))
	fmt.Fprintf(w, "usage: %s\nspotinit: hint: run 'spotinit --help' for the options\n", usageLine)
	return exitUsage
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

// action runs once the options are parsed.
func action(c *cli.Context) int {
	argv := c.Args().Slice()
	if len(argv) == 0 {
		return reportError(os.Stderr, errors.New("no command given"))
	}
	cfg, log, err := configure(c, argv)
	if err != nil {
		return reportError(os.Stderr, err)
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
	cfg.Reaper = r
	res, err := supervisor.Run(ctx, cfg)
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

// configure turns the parsed options into the packages' configs.
func configure(c *cli.Context, argv []string) (supervisor.Config, *slog.Logger, error) {
	var cfg supervisor.Config
	log, err := newLogger(c.String("log-format"), c.String("log-level"))
	if err != nil {
		return cfg, nil, err
	}
	stop, err := durationOption(c, "stop-timeout")
	if err != nil {
		return cfg, nil, err
	}
	margin, err := durationOption(c, "kill-margin")
	if err != nil {
		return cfg, nil, err
	}
	if stop == 0 {
		return cfg, nil, usagef("--stop-timeout %s: must be more than 0", c.String("stop-timeout"))
	}
	if margin >= stop {
		return cfg, nil, usagef("--kill-margin %s: must be shorter than --stop-timeout %s", c.String("kill-margin"), c.String("stop-timeout"))
	}
	rewrite, err := rewriteOption(c.StringSlice("rewrite"))
	if err != nil {
		return cfg, nil, err
	}
	cfg = supervisor.Config{
		Argv:        argv,
		StopTimeout: stop,
		KillMargin:  margin,
		SingleChild: c.Bool("single-child"),
		NoWait:      c.Bool("no-wait"),
		Rewrite:     rewrite,
		Log:         log,
	}
	return cfg, log, nil
}

// maxDuration bounds every duration option: anything longer is a typo, and
// Kubernetes' longest grace periods are hours, not days.
const maxDuration = 24 * time.Hour

func durationOption(c *cli.Context, name string) (time.Duration, error) {
	s := c.String(name)
	d, err := parseDuration(s)
	if err != nil {
		return 0, usagef("--%s %q: %v", name, s, err)
	}
	return d, nil
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
	for _, spec := range specs {
		from, to, err := supervisor.ParseRewrite(spec)
		if err != nil {
			return nil, usagef("--rewrite: %v", err)
		}
		m[from] = to
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
