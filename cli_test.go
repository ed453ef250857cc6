package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spotinit/spotinit/interruption"
	"github.com/urfave/cli/v2"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30s", 30 * time.Second, true},
		{"1m30s", 90 * time.Second, true},
		{"30", 30 * time.Second, true},
		{" 30 ", 30 * time.Second, true},
		{"2.5", 2500 * time.Millisecond, true},
		{"0", 0, true},
		{"500ms", 500 * time.Millisecond, true},
		{"24h", 24 * time.Hour, true},
		{"24h1s", 0, false},
		{"-5s", 0, false},
		{"-5", 0, false},
		{"abc", 0, false},
		{"", 0, false},
		{"1e3", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"0x10", 0, false},
		{"9999999999999999999999", 0, false},
	} {
		got, err := parseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "30", "1m30s", "2.5", "-1", "1e9", "9223372036s", ".5", "5."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err == nil && (d < 0 || d > maxDuration) {
			t.Fatalf("parseDuration(%q) = %v, outside 0..%v", s, d, maxDuration)
		}
	})
}

func TestNonBlank(t *testing.T) {
	got := nonBlank(strings.Split("echo a, b\r\n\n  \necho c\n", "\n"))
	if strings.Join(got, "|") != "echo a, b|echo c" {
		t.Errorf("nonBlank = %q", got)
	}
}

// FuzzEnvList: the newline-separated hook lists from the environment never
// yield a blank command or one with a line break in it.
func FuzzEnvList(f *testing.F) {
	for _, s := range []string{"", "\n", "a\nb", "a\r\nb\r\n", " \n\t\n", "echo 'x\ny'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range nonBlank(strings.Split(s, "\n")) {
			if strings.TrimSpace(v) == "" || strings.ContainsAny(v, "\n") || strings.HasSuffix(v, "\r") {
				t.Fatalf("entry %q from %q", v, s)
			}
		}
	})
}

// FuzzConfigure feeds arbitrary option values through the real flag
// definitions and configure: a value is accepted or refused with a
// usageError, never a panic.
func FuzzConfigure(f *testing.F) {
	for _, s := range []string{
		"--stop-timeout\x0030s", "--kill-margin\x00-1", "--rewrite\x00TERM:QUIT", "--rewrite\x00:",
		"--imds\x00maybe", "--imds-endpoint\x00http://[::1", "--notices\x00spot,,asg", "--hibernate\x00",
		"--notice-signal\x0099", "--imds-poll-interval\x001e9", "--stale-after\x00NaN", "--log-level\x00DEBUG",
		"--simulate-notice\x000.0000001", "--hook-timeout\x00-0", "--pre-stop\x00", "--notice-file\x00/",
		"--simulate-notice\x00rebalance=1s; spot=2s,action=stop", "--rewrite\x00KILL:TERM", "--on-rebalance\x00x\x00--notices\x00spot",
		"--imds\x00off\x00--notice-signal\x00USR1", "--pre-stop-parallel", "--no-wait=maybe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := append([]string{"spotinit"}, strings.Split(s, "\x00")...)
		app := newApp(func(c *cli.Context) error {
			_, err := configure(c, []string{"true"})
			var ue usageError
			if err != nil && !errors.As(err, &ue) {
				t.Fatalf("%q: configure's error %v is not a usage error", args, err)
			}
			return err
		})
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		_ = app.Run(args) // any error is reported with status 125; a panic fails the fuzz
	})
}

// configureArgs runs the real command line up to configure, with env as
// the whole environment, and returns what configure made of it or the
// error spotinit would report.
func configureArgs(t *testing.T, env []string, args ...string) (setup, error) {
	t.Helper()
	var (
		st   setup
		cerr error
		ran  bool
	)
	app := newApp(func(c *cli.Context) error {
		ran = true
		st, cerr = configureEnv(c, []string{"true"}, env)
		return nil
	})
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	if err := app.Run(append([]string{"spotinit"}, args...)); err != nil {
		return st, explain(err, args)
	}
	if !ran {
		t.Fatalf("%q: the action did not run", args)
	}
	return st, cerr
}

// errorLines is err as spotinit prints it.
func errorLines(err error) string {
	var b strings.Builder
	reportError(&b, err)
	return b.String()
}

// noteText is the notes' messages and attributes, one note a line.
func noteText(st setup) string {
	var lines []string
	for _, n := range st.notes {
		lines = append(lines, fmt.Sprint(n.level, " ", n.msg, " ", n.args))
	}
	return strings.Join(lines, "\n")
}

// allVariables is every option's variable, each set to the empty string.
func allVariables() []string {
	var env []string
	for _, f := range flags() {
		if e, ok := f.(interface{ GetEnvVars() []string }); ok {
			for _, v := range e.GetEnvVars() {
				env = append(env, v+"=")
			}
		}
	}
	return env
}

func TestConfigureEmptyVariablesAreUnset(t *testing.T) {
	env := allVariables()
	if len(env) < 24 {
		t.Fatalf("only %d variables: %q", len(env), env)
	}
	st, err := configureArgs(t, env, "--", "true")
	if err != nil {
		t.Fatalf("every variable empty: %s", errorLines(err))
	}
	want, err := configureArgs(t, nil, "--", "true")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"stop timeout", st.sup.StopTimeout, 30 * time.Second},
		{"kill margin", st.sup.KillMargin, 2 * time.Second},
		{"hook timeout", st.sup.HookTimeout, 30 * time.Second},
		{"kinds", fmt.Sprint(st.watch.Kinds), fmt.Sprint(want.watch.Kinds)},
		{"scheduled lead", st.watch.ScheduledLead, 5 * time.Minute},
		{"stale after", st.watch.StaleAfter, 5 * time.Minute},
		{"poll interval", st.watch.PollInterval, 2 * time.Second},
		{"mode", st.watch.Mode, interruption.Auto},
		{"pre-stop", len(st.sup.PreStop) + len(st.sup.OnRebalance), 0},
		{"notice signal", st.sup.NoticeSignal, syscall.Signal(0)},
		{"simulate", st.simulate == nil, true},
		{"notes", noteText(st), ""},
	} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s with every variable empty: %v, want %v (the default)", c.name, c.got, c.want)
		}
	}
}

func TestConfigureRules(t *testing.T) {
	dir := t.TempDir()
	hookDir := filepath.Join(dir, "hooks.d")
	emptyDir := filepath.Join(dir, "empty.d")
	for _, d := range []string{hookDir, emptyDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(hookDir, "10-run"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	badDir := filepath.Join(dir, "bad.d")
	if err := os.Mkdir(badDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(badDir, "10-no-x"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noticeFile := filepath.Join(dir, "notice.json")

	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		err   string // regexp for the whole report (error and hint lines); "" means accepted
		check func(setup) string
	}{
		// Values from the environment name the variable; flags win.
		{name: "env duration", env: []string{"SPOTINIT_STOP_TIMEOUT=abc"},
			err: `^spotinit: error: SPOTINIT_STOP_TIMEOUT="abc": want a duration like 30s or 1m30s, or a number of seconds\n$`},
		{name: "flag wins", env: []string{"SPOTINIT_STOP_TIMEOUT=abc"}, args: []string{"--stop-timeout", "40"},
			check: func(st setup) string { return fmt.Sprint(st.sup.StopTimeout) }, err: ""},
		{name: "env bool", env: []string{"SPOTINIT_NO_WAIT=yes"},
			err: `^spotinit: error: SPOTINIT_NO_WAIT="yes": want true or false \(or 1 or 0\)\n$`},
		{name: "env bool forms", env: []string{"SPOTINIT_NO_WAIT=T", "SPOTINIT_SINGLE_CHILD=1", "SPOTINIT_STOP_ON_NOTICE=FALSE"},
			check: func(st setup) string {
				return fmt.Sprint(st.sup.NoWait, st.sup.SingleChild, st.sup.StopOnNotice)
			}},
		{name: "env enum", env: []string{"SPOTINIT_LOG_LEVEL=loud"},
			err: `^spotinit: error: SPOTINIT_LOG_LEVEL="loud": want debug, info, warn or error\n$`},
		{name: "env format", env: []string{"SPOTINIT_LOG_FORMAT=xml"},
			err: `^spotinit: error: SPOTINIT_LOG_FORMAT="xml": want text or json\n$`},
		{name: "margin default", args: []string{"--stop-timeout", "1s"},
			err: `^spotinit: error: --stop-timeout "1s": must be longer than --kill-margin "2s" \(the default\)\n$`},
		{name: "margin given", env: []string{"SPOTINIT_KILL_MARGIN=5s", "SPOTINIT_STOP_TIMEOUT=5s"},
			err: `^spotinit: error: SPOTINIT_KILL_MARGIN="5s": must be shorter than SPOTINIT_STOP_TIMEOUT="5s"\n$`},
		{name: "hook timeout longer than stop timeout", args: []string{"--stop-timeout", "10s", "--hook-timeout", "1m", "--pre-stop", "true"}},

		// Notices: turned on where the intent is plain, refused where
		// --notices says otherwise.
		{name: "on-rebalance turns rebalance on", args: []string{"--on-rebalance", "echo x"},
			check: func(st setup) string { return fmt.Sprint(st.watch.Kinds, " ", noteText(st)) }},
		{name: "scheduled-reboot turns scheduled on", env: []string{"SPOTINIT_SCHEDULED_REBOOT=true"},
			check: func(st setup) string { return fmt.Sprint(st.watch.Kinds, " ", noteText(st)) }},
		{name: "scheduled-lead turns scheduled on", args: []string{"--scheduled-lead", "10m", "--scheduled-reboot"},
			check: func(st setup) string { return fmt.Sprint(st.watch.Kinds, " ", noteText(st)) }},
		{name: "on-rebalance excluded", args: []string{"--notices", "spot,asg", "--on-rebalance", "echo x"},
			err: `^spotinit: error: --on-rebalance "echo x": acts only on rebalance notices, which --notices "spot,asg" leaves out\nspotinit: hint: add rebalance to --notices, or leave it unset\n$`},
		{name: "on-rebalance excluded in env", env: []string{"SPOTINIT_NOTICES=spot", "SPOTINIT_ON_REBALANCE=echo x\necho y"},
			err: `^spotinit: error: SPOTINIT_ON_REBALANCE="echo x\\necho y": acts only on rebalance notices, which SPOTINIT_NOTICES="spot" leaves out\nspotinit: hint: add rebalance to SPOTINIT_NOTICES, or leave it unset\n$`},
		{name: "scheduled-reboot excluded", env: []string{"SPOTINIT_NOTICES=spot,asg"}, args: []string{"--scheduled-reboot"},
			err: `^spotinit: error: --scheduled-reboot: acts only on scheduled notices, which SPOTINIT_NOTICES="spot,asg" leaves out\n`},
		{name: "hibernate without spot", args: []string{"--notices", "asg", "--hibernate", "stop"},
			err: `^spotinit: error: --hibernate "stop": acts only on spot notices, which --notices "asg" leaves out\n`},
		{name: "stop-on-notice with rebalance only", args: []string{"--notices", "rebalance", "--stop-on-notice"},
			err: `^spotinit: error: --stop-on-notice: acts only on spot, asg or scheduled notices, which --notices "rebalance" leaves out\n`},
		{name: "stop-on-notice false is no request", args: []string{"--imds", "off", "--stop-on-notice=false"}},
		{name: "nothing watched", args: []string{"--notices", "", "--notice-file", noticeFile},
			err: `^spotinit: error: --notice-file ".*notice.json": never acts, since --notices "" watches no notice\nspotinit: hint: remove one of the two\n$`},
		{name: "imds on, nothing to watch", args: []string{"--imds", "on", "--notices", ""},
			err: `^spotinit: error: --imds "on": has nothing to watch with --notices ""\n`},
		{name: "imds off in env", env: []string{"SPOTINIT_IMDS=off", "SPOTINIT_NOTICE_SIGNAL=USR1"},
			err: `^spotinit: error: SPOTINIT_NOTICE_SIGNAL="USR1": never acts, since SPOTINIT_IMDS="off" watches no notice\nspotinit: hint: remove one of the two \(an empty variable counts as unset\)\n$`},

		// Signals.
		{name: "rewrite KILL", args: []string{"--rewrite", "KILL:TERM"},
			err: `^spotinit: error: --rewrite "KILL:TERM": spotinit does not forward SIGKILL, so it can never rewrite it\nspotinit: hint: FROM is one of the signals spotinit forwards: HUP, INT, QUIT, USR1, USR2, ALRM, TERM, CONT, TSTP, TTIN, TTOU, WINCH, PWR\n$`},
		{name: "rewrite CHLD in a list", env: []string{"SPOTINIT_REWRITE=TERM:QUIT,CHLD:TERM"},
			err: `^spotinit: error: SPOTINIT_REWRITE="TERM:QUIT,CHLD:TERM": rewrite "CHLD:TERM": spotinit does not forward SIGCHLD, so it can never rewrite it\n`},
		{name: "rewrite URG", args: []string{"--rewrite", "URG:0"}, err: `SIGURG, so it can never`},
		{name: "rewrite PIPE", args: []string{"--rewrite", "PIPE:TERM"}, err: `SIGPIPE, so it can never`},
		{name: "rewrite to itself", args: []string{"--rewrite", "TERM:15"}, err: `: rewrites SIGTERM to itself\n$`},
		{name: "rewrite twice", args: []string{"--rewrite", "TERM:QUIT", "--rewrite", "TERM:0"},
			err: `^spotinit: error: --rewrite "TERM:0": SIGTERM is already rewritten to SIGQUIT\n$`},
		{name: "rewrite repeated alike", args: []string{"--rewrite", "TERM:QUIT,TERM:QUIT,INT:0"},
			check: func(st setup) string { return fmt.Sprint(st.sup.Rewrite) }},
		{name: "notice signal KILL", args: []string{"--notice-signal", "KILL"},
			err: `^spotinit: error: --notice-signal "KILL": no program can catch SIGKILL, so the child cannot act on it\nspotinit: hint: use a signal the app handles, such as USR1\n$`},
		{name: "notice signal STOP", env: []string{"SPOTINIT_NOTICE_SIGNAL=19"},
			err: `^spotinit: error: SPOTINIT_NOTICE_SIGNAL="19": no program can catch SIGSTOP`},

		// Hooks.
		{name: "pre-stop-parallel without hooks", args: []string{"--pre-stop-parallel"},
			err: `^spotinit: error: --pre-stop-parallel: there is no pre-stop hook to run alongside the child\nspotinit: hint: give --pre-stop or --pre-stop-dir, or remove it\n$`},
		{name: "pre-stop-parallel with a directory", args: []string{"--pre-stop-parallel", "--pre-stop-dir", hookDir}},
		{name: "non-executable hook file", args: []string{"--pre-stop-dir", badDir},
			err: `^spotinit: error: --pre-stop-dir ".*bad.d": .*bad.d/10-no-x: not executable \(mode -rw-r--r--\).*\nspotinit: hint: every file in the directory is run`},
		{name: "empty hook directory", env: []string{"SPOTINIT_PRE_STOP_DIR=" + emptyDir},
			check: func(st setup) string { return strings.ReplaceAll(noteText(st), emptyDir, "EMPTY") }},
		{name: "notice file directory is a file", args: []string{"--notice-file", filepath.Join(hookDir, "10-run", "n.json")},
			err: `^spotinit: error: --notice-file ".*n.json": .*10-run is not a directory\n$`},
		{name: "notice file is a directory", args: []string{"--notice-file", dir},
			err: `^spotinit: error: --notice-file ".*": .* is a directory\n$`},
		{name: "notice file", args: []string{"--notice-file", noticeFile}},

		// Rehearsals.
		{name: "rehearsal shorthand", args: []string{"--simulate-notice", "2.5"},
			check: func(st setup) string { return st.simulate.String() + " " + st.watch.Mode.String() }},
		{name: "rehearsal at 0", args: []string{"--simulate-notice", "0"},
			err: `^spotinit: error: --simulate-notice "0": want more than 0\nspotinit: hint: for a notice at once write spot=0s`},
		{name: "rehearsal scenario", env: []string{"SPOTINIT_SIMULATE_NOTICE=rebalance=2s; spot=10s,action=stop"},
			check: func(st setup) string {
				return fmt.Sprint(st.simulate.String(), " ", st.watch.Kinds, " ", st.watch.Mode, " ", noteText(st))
			}},
		{name: "rehearsal with faults", args: []string{"--simulate-notice", "spot=1s fault=spot:500:0s-1s"},
			check: func(st setup) string { return st.simulate.String() }},
		{name: "rehearsal text", args: []string{"--simulate-notice", "spot=1s,action"},
			err: `^spotinit: error: --simulate-notice "spot=1s,action": scenario clause "spot=1s,action": unknown spot option "action"\n$`},
		{name: "rehearsal of nothing", args: []string{"--simulate-notice", " ; "},
			err: `^spotinit: error: --simulate-notice " ; ": want a duration like 30s, or a scenario like 'rebalance=2s; spot=10s,action=stop'\n$`},
		{name: "rehearsal nonsense", args: []string{"--simulate-notice", "soon"},
			err: `^spotinit: error: --simulate-notice "soon": want a duration like 30s, or a scenario like`},
		{name: "rehearsal excluded kind", args: []string{"--simulate-notice", "1s", "--notices", "rebalance", "--on-rebalance", "echo x"},
			err: `^spotinit: error: --simulate-notice "1s": announces spot notices, which --notices "rebalance" leaves out\nspotinit: hint: add spot to --notices, or leave it unset\n$`},
		{name: "rehearsal and imds off", args: []string{"--simulate-notice", "asg=1s", "--imds", "off"},
			err: `^spotinit: error: --simulate-notice "asg=1s": rehearses with a local IMDS, which --imds "off" turns off\nspotinit: hint: remove one of the two\n$`},
		{name: "rehearsal and endpoint", args: []string{"--simulate-notice", "1s", "--imds-endpoint", "http://127.0.0.1:9"},
			err: `^spotinit: error: --simulate-notice "1s": serves its own IMDS, so --imds-endpoint "http://127.0.0.1:9" would never be used\n`},
		{name: "rehearsal and endpoint in env", env: []string{"SPOTINIT_IMDS_ENDPOINT=http://127.0.0.1:9"}, args: []string{"--simulate-notice", "1s"},
			err: `^spotinit: error: --simulate-notice "1s": serves its own IMDS, so SPOTINIT_IMDS_ENDPOINT="http://127.0.0.1:9" would never be used\nspotinit: hint: remove one of the two \(an empty variable counts as unset\)\n$`},
		{name: "rehearsal and imds on", args: []string{"--simulate-notice", "1s", "--imds", "on"}},

		// Variables no option reads.
		{name: "misspelt variable", env: []string{"SPOTINIT_PRESTOP_DIR=/x", "SPOTINIT_E2E=1", "SPOTINIT_EVENT=stop-signal"},
			check: func(st setup) string { return noteText(st) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string(nil), tc.args...), "true")
			st, err := configureArgs(t, tc.env, args...)
			switch {
			case err != nil && tc.err == "":
				t.Fatalf("refused: %s", errorLines(err))
			case err == nil && tc.err != "":
				t.Fatalf("accepted, want an error matching %q", tc.err)
			case err != nil:
				var ue usageError
				if !errors.As(err, &ue) {
					t.Errorf("%v is not a usage error", err)
				}
				if got := errorLines(err); !regexp.MustCompile(tc.err).MatchString(got) {
					t.Errorf("reported\n%s\nwant a match for %q", got, tc.err)
				}
			case tc.check != nil:
				got := tc.check(st)
				if want := configureWant[tc.name]; got != want {
					t.Errorf("got  %q\nwant %q", got, want)
				}
			}
		})
	}
}

// configureWant is what TestConfigureRules' check functions must return.
var configureWant = map[string]string{
	"flag wins":                           "40s",
	"env bool forms":                      "true true false",
	"on-rebalance turns rebalance on":     "[spot-interruption asg-terminate rebalance] INFO notices turned on [notices rebalance by --on-rebalance]",
	"scheduled-reboot turns scheduled on": "[spot-interruption asg-terminate scheduled-event] INFO notices turned on [notices scheduled by SPOTINIT_SCHEDULED_REBOOT]",
	"scheduled-lead turns scheduled on":   "[spot-interruption asg-terminate scheduled-event] INFO notices turned on [notices scheduled by --scheduled-reboot]",
	"rewrite repeated alike":              "map[interrupt:signal 0 terminated:quit]",
	"empty hook directory":                "WARN pre-stop directory has no hooks yet [dir EMPTY hint it is listed again when the hooks run]",
	"rehearsal shorthand":                 "spot=2.5s on",
	"rehearsal scenario":                  "spot=10s,action=stop rebalance=2s [spot-interruption asg-terminate rebalance] on INFO notices turned on [notices rebalance by SPOTINIT_SIMULATE_NOTICE]",
	"rehearsal with faults":               "spot=1s fault=spot:500:0s-1s",
	"misspelt variable":                   "WARN unknown variables ignored [variables SPOTINIT_PRESTOP_DIR,SPOTINIT_E2E hint did you mean SPOTINIT_PRE_STOP_DIR for SPOTINIT_PRESTOP_DIR?]",
}

// TestConfigureNoticeOptions: every option that acts only on a notice is
// refused with --imds off, naming both, whether it comes from a flag or
// from its variable.
func TestConfigureNoticeOptions(t *testing.T) {
	sample := map[string]string{
		"on-rebalance": "echo x", "scheduled-reboot": "true", "scheduled-lead": "10m", "hibernate": "stop",
		"stale-after": "1m", "stop-on-notice": "true", "notice-signal": "USR1", "notice-file": filepath.Join(t.TempDir(), "n.json"),
		"imds-poll-interval": "1s", "imds-endpoint": "http://127.0.0.1:9", "notices": "spot",
	}
	for _, n := range noticeOptions {
		v, ok := sample[n.name]
		if !ok {
			t.Fatalf("no sample value for --%s", n.name)
		}
		for _, viaEnv := range []bool{false, true} {
			args, env := []string{"--imds", "off"}, []string(nil)
			o := option{name: n.name, src: "--" + n.name, value: v, isBool: v == "true"}
			if viaEnv {
				env = []string{envName(n.name) + "=" + v}
				o.src = envName(n.name)
			} else if o.isBool {
				args = append(args, "--"+n.name)
			} else {
				args = append(args, "--"+n.name, v)
			}
			_, err := configureArgs(t, env, append(args, "true")...)
			want := fmt.Sprintf("spotinit: error: %s: never acts, since --imds \"off\" watches no notice\n", o)
			if err == nil || !strings.HasPrefix(errorLines(err), want) {
				t.Errorf("%s with --imds off: got %v, want %q", o, err, want)
			}
		}
	}
}

func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-x", "true"}, "spotinit: error: unknown option -x\nspotinit: hint: run 'spotinit --help' for the options\n"},
		{[]string{"--bogus=1", "true"}, "spotinit: error: unknown option --bogus\nspotinit: hint: run 'spotinit --help' for the options\n"},
		{[]string{"--stop-timeout"}, "spotinit: error: option --stop-timeout needs a value\nspotinit: hint: run 'spotinit --help' for the options\n"},
		{[]string{"-no-wait=maybe", "true"}, "spotinit: error: -no-wait \"maybe\": want true or false (or 1 or 0)\n"},
	} {
		app := newApp(func(*cli.Context) error { return nil })
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		err := app.Run(append([]string{"spotinit"}, tc.args...))
		if err == nil {
			t.Errorf("%q accepted", tc.args)
			continue
		}
		if got := errorLines(explain(err, tc.args)); got != tc.want {
			t.Errorf("%q:\ngot  %q\nwant %q", tc.args, got, tc.want)
		}
	}
}

// TestNoShellHint checks that the hint for a missing /bin/sh fits the
// option that needs it: --pre-stop-dir is a way out for --pre-stop, never
// for --on-rebalance (its hooks do not run on a rebalance). The tests
// cannot take /bin/sh away, so the cause is given.
func TestNoShellHint(t *testing.T) {
	cause := errors.New("/bin/sh is missing in this image")
	given := func(name, value string) option {
		return option{name: name, src: "--" + name, value: value, values: []string{value}}
	}
	for _, tc := range []struct {
		name                 string
		preStop, onRebalance []string
		want                 string
	}{
		{"pre-stop", []string{"echo a"}, nil,
			"spotinit: error: --pre-stop \"echo a\": commands need /bin/sh: /bin/sh is missing in this image\n" +
				"spotinit: hint: put the hook in --pre-stop-dir as an executable file: those run without a shell\n"},
		{"on-rebalance", nil, []string{"echo b"},
			"spotinit: error: --on-rebalance \"echo b\": commands need /bin/sh: /bin/sh is missing in this image\n" +
				"spotinit: hint: add /bin/sh to the image: --on-rebalance commands run only with it (--pre-stop-dir hooks never run on a rebalance)\n"},
		{"both", []string{"echo a"}, []string{"echo b"},
			"spotinit: error: --on-rebalance \"echo b\": commands need /bin/sh: /bin/sh is missing in this image\n" +
				"spotinit: hint: add /bin/sh to the image: --on-rebalance commands run only with it (--pre-stop-dir hooks never run on a rebalance); --pre-stop commands can instead go in --pre-stop-dir as executable files\n"},
	} {
		s := &settings{opts: map[string]option{}, preStop: tc.preStop, onRebalance: tc.onRebalance}
		if len(tc.preStop) > 0 {
			s.opts["pre-stop"] = given("pre-stop", tc.preStop[0])
		}
		if len(tc.onRebalance) > 0 {
			s.opts["on-rebalance"] = given("on-rebalance", tc.onRebalance[0])
		}
		if got := errorLines(s.noShell(cause)); got != tc.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
}
