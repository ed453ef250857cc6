package main

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spotinit/spotinit/interruption"
	"github.com/urfave/cli/v2"
)

// This file holds every start-up rule that looks at the options together,
// after each has been parsed on its own (settings.parse). A setting that
// cannot act is refused with status 125, in one line that names the options
// as the user wrote them; where the user's intent is plain, a rule completes
// the settings instead and a note says so at INFO.

// A rule checks the settings together. It returns a usage error when they
// cannot act as given, or completes them.
type rule struct {
	about string // what the rule makes sure of
	check func(*settings) error
}

// rules are tried in this order; the first error is the one reported.
var rules = []rule{
	{"--kill-margin is shorter than --stop-timeout", checkKillMargin},
	{"--forward-delay leaves the child its reserve", checkForwardDelayRule},
	{"--simulate-notice watches only its own IMDS, for notices --notices allows", checkRehearsal},
	{"--simulate-notice announces only scheduled events that act", checkRehearsalEvents},
	{"an option that acts on notices has them watched", checkNoticeOptions},
	{"--imds on has notices to watch", checkIMDSOn},
	{"--pre-stop-parallel has pre-stop hooks to run", checkPreStopParallel},
	{"a hook command given on the command line is not blank", checkBlankHooks},
	{"--hook-timeout has hooks to bound", checkHookTimeout},
	{"--imds-poll-interval can see a Spot notice in time", checkPollInterval},
	{"notices turned on by other options are said once", noteTurnedOn},
}

// noticeOptions are the options that act only when IMDS gives a notice, and
// the notices (as --notices names them) each acts on; nil means any. Each is
// refused when no notice is watched (--imds off, or --notices given empty)
// and when --notices was given without any of its notices. With --notices
// left at its default, one that turnsOn adds its notices instead.
var noticeOptions = []struct {
	name    string
	notices []string
	turnsOn bool
}{
	{"on-rebalance", []string{"rebalance"}, true},
	{"scheduled-reboot", []string{"scheduled"}, true},
	{"scheduled-lead", []string{"scheduled"}, true},
	{"hibernate", []string{"spot"}, false},
	{"stale-after", []string{"spot"}, false},
	{"stop-on-notice", []string{"spot", "asg", "scheduled"}, false}, // rebalance never stops the child
	{"notice-signal", nil, false},
	{"notice-file", nil, false},
	{"imds-poll-interval", nil, false},
	{"imds-endpoint", nil, false},
	{"notices", nil, false},
}

func checkKillMargin(s *settings) error {
	if s.margin < s.stop {
		return nil
	}
	stop, margin := s.opt("stop-timeout"), s.opt("kill-margin")
	if !margin.given() {
		return bad(stop, "must be longer than %s", margin)
	}
	return bad(margin, "must be shorter than %s", stop)
}

// checkForwardDelayRule: a --forward-delay the stop could never honour is
// refused (see checkForwardDelay).
func checkForwardDelayRule(s *settings) error {
	if err := checkForwardDelay(s.forwardDelay, s.stop, s.margin); err != nil {
		return bad(s.opt("forward-delay"), "%v", err)
	}
	return nil
}

// checkRehearsal: --simulate-notice serves its own IMDS and watches it, so
// it contradicts --imds off and --imds-endpoint (given as a flag or as
// SPOTINIT_IMDS_ENDPOINT), and every notice its scenario announces must be
// one that --notices allows; with --notices left at its default they are
// turned on. Fault clauses are allowed: rehearsing a failing IMDS is part of
// rehearsing.
func checkRehearsal(s *settings) error {
	if s.scenario == nil {
		return nil
	}
	sim, imds, ep := s.opt("simulate-notice"), s.opt("imds"), s.opt("imds-endpoint")
	if s.mode == interruption.Off {
		return withHint(bad(sim, "rehearses with a local IMDS, which %s turns off", imds), "%s", removeOne(sim, imds))
	}
	if ep.acts() {
		return withHint(bad(sim, "serves its own IMDS, so %s would never be used", ep), "%s", removeOne(sim, ep))
	}
	for _, name := range s.scenario.Announces() {
		if err := s.needNotices(sim, []string{name}, true); err != nil {
			return withHint(bad(sim, "announces %s notices, which %s leaves out", name, s.opt("notices")),
				"add %s to %s, or leave it unset", name, s.opt("notices").src)
		}
	}
	s.mode = interruption.On
	return nil
}

// checkRehearsalEvents: a rehearsed scheduled event that the watcher would
// only log as ignored ("event code not acted on") rehearses nothing, so it
// is refused: a reboot without --scheduled-reboot, any code but stop,
// retirement and the reboots always. An event whose state is not active
// (canceled, completed) is ignored for its state, which is worth
// rehearsing, and is let through.
func checkRehearsalEvents(s *settings) error {
	if s.scenario == nil {
		return nil
	}
	sim, reboot := s.opt("simulate-notice"), s.opt("scheduled-reboot")
	for _, ev := range s.scenario.Scheduled {
		if ev.State != "" && ev.State != "active" || interruption.ActsOnScheduled(ev.Code, s.scheduledReboot) {
			continue
		}
		if interruption.ActsOnScheduled(ev.Code, true) {
			without := "without --scheduled-reboot"
			if reboot.given() {
				without = "with " + reboot.String()
			}
			return withHint(bad(sim, "announces a scheduled %s event, which spotinit ignores %s", ev.Code, without),
				"add --scheduled-reboot, which acts on scheduled reboots as on stops")
		}
		return withHint(bad(sim, "announces a scheduled %q event, which spotinit never acts on", ev.Code),
			"rehearse instance-stop or instance-retirement (instance-reboot or system-reboot with --scheduled-reboot)")
	}
	return nil
}

func checkNoticeOptions(s *settings) error {
	imds := s.opt("imds")
	for _, n := range noticeOptions {
		o := s.opt(n.name)
		if !o.acts() {
			continue
		}
		if s.mode == interruption.Off {
			return withHint(bad(o, "never acts, since %s watches no notice", imds), "%s", removeOne(o, imds))
		}
		if n.notices == nil {
			continue
		}
		if err := s.needNotices(o, n.notices, n.turnsOn); err != nil {
			return err
		}
	}
	if len(s.kinds) > 0 {
		return nil
	}
	notices := s.opt("notices") // given, and empty
	for _, n := range noticeOptions {
		if o := s.opt(n.name); o.acts() && n.name != "notices" {
			return withHint(bad(o, "never acts, since %s watches no notice", notices), "%s", removeOne(o, notices))
		}
	}
	return nil
}

func checkIMDSOn(s *settings) error {
	if o := s.opt("imds"); o.given() && s.mode == interruption.On && len(s.kinds) == 0 {
		return withHint(bad(o, "has nothing to watch with %s", s.opt("notices")), "%s", removeOne(o, s.opt("notices")))
	}
	return nil
}

func checkPreStopParallel(s *settings) error {
	if o := s.opt("pre-stop-parallel"); o.acts() && len(s.preStop) == 0 && s.preStopDir == "" {
		return withHint(bad(o, "there is no pre-stop hook to run alongside the child"),
			"give --pre-stop or --pre-stop-dir, or remove it")
	}
	return nil
}

// checkBlankHooks: a blank command given as a flag runs nothing, and would
// be found missing only at the first notice. (In the variables, one command
// per line, blank lines are only layout.)
func checkBlankHooks(s *settings) error {
	for _, name := range []string{"pre-stop", "on-rebalance"} {
		o := s.opt(name)
		if !strings.HasPrefix(o.src, "-") {
			continue
		}
		for _, v := range o.values {
			if strings.TrimSpace(v) == "" {
				return withHint(usagef("%s %q: an empty command runs nothing", o.src, v),
					"give the command to run, or remove the option")
			}
		}
	}
	return nil
}

// checkHookTimeout: --hook-timeout bounds hooks; with none configured it
// cannot act.
func checkHookTimeout(s *settings) error {
	o := s.opt("hook-timeout")
	if !o.acts() || len(s.preStop)+len(s.onRebalance) > 0 || s.preStopDir != "" {
		return nil
	}
	hint := "give --pre-stop, --pre-stop-dir or --on-rebalance, or remove it"
	if !strings.HasPrefix(o.src, "-") {
		hint += " (an empty variable counts as unset)"
	}
	return withHint(bad(o, "there is no hook for it to bound"), "%s", hint)
}

// spotLead is how far ahead of the instance's end a Spot interruption
// notice appears in IMDS.
const spotLead = 2 * time.Minute

// checkPollInterval: a Spot notice is visible two minutes before the end;
// read less often than that and a notice is seen too late to act on, or
// not at all.
func checkPollInterval(s *settings) error {
	o := s.opt("imds-poll-interval")
	if s.mode == interruption.Off || s.poll < spotLead || !slices.Contains(s.kinds, interruption.Spot) {
		return nil
	}
	return withHint(bad(o, "a Spot notice comes two minutes before the instance ends, so reading it this seldom can miss it"),
		"use the default (2s), or at most a few seconds")
}

// noteTurnedOn says once which notices other options turned on.
func noteTurnedOn(s *settings) error {
	if len(s.turnedOn) == 0 {
		return nil
	}
	s.notes = append(s.notes, note{slog.LevelInfo, "notices turned on",
		[]any{"notices", strings.Join(s.turnedOn, ","), "by", strings.Join(s.turnedOnBy, ",")}})
	return nil
}

// needNotices makes sure that one of notices (--notices names) is watched
// for o: it is, or, with --notices left at its default and turnOn, it is
// added (turnedOn records it); otherwise o cannot act and the error says
// why.
func (s *settings) needNotices(o option, notices []string, turnOn bool) error {
	want, err := interruption.ParseKinds(strings.Join(notices, ","))
	if err != nil {
		panic(err) // the names in this file are ParseKinds' own
	}
	for _, k := range want {
		if slices.Contains(s.kinds, k) {
			return nil
		}
	}
	nopt := s.opt("notices")
	if nopt.given() || !turnOn {
		return withHint(bad(o, "acts only on %s notices, which %s leaves out", orList(notices), nopt),
			"add %s to %s, or leave it unset", notices[0], nopt.src)
	}
	s.kinds = append(s.kinds, want[0])
	if !slices.Contains(s.turnedOn, notices[0]) {
		s.turnedOn = append(s.turnedOn, notices[0])
	}
	if !slices.Contains(s.turnedOnBy, o.src) {
		s.turnedOnBy = append(s.turnedOnBy, o.src)
	}
	return nil
}

// removeOne is the hint for two options that contradict each other.
func removeOne(a, b option) string {
	if strings.HasPrefix(a.src, "-") && strings.HasPrefix(b.src, "-") {
		return "remove one of the two"
	}
	return "remove one of the two (an empty variable counts as unset)"
}

// orList writes "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// hookVariables are set by spotinit for its hooks, not read by it: a
// spotinit started from a hook sees them.
var hookVariables = []string{"SPOTINIT_EVENT", "SPOTINIT_ACTION", "SPOTINIT_NOTICE_TIME", "SPOTINIT_DEADLINE", "SPOTINIT_CHILD_PID"}

// unknownVariables warns, in one record, about the SPOTINIT_ variables that
// no option reads, most likely misspelt, naming the closest known one where
// there is one; an empty one is not set, as for the options. A warning, not
// an error: the prefix is not spotinit's alone (test harnesses, CI and the
// hooks' own variables use it), and a container's environment holds more
// than what was meant for spotinit.
func unknownVariables(flags []cli.Flag, environ []string) []note {
	var known []string
	for _, f := range flags {
		if e, ok := f.(interface{ GetEnvVars() []string }); ok {
			known = append(known, e.GetEnvVars()...)
		}
	}
	var unknown, guesses []string
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "SPOTINIT_") || strings.TrimSpace(value) == "" ||
			slices.Contains(known, name) || slices.Contains(hookVariables, name) || slices.Contains(unknown, name) {
			continue
		}
		unknown = append(unknown, name)
		if near := closest(name, known); near != "" {
			guesses = append(guesses, fmt.Sprintf("%s for %s?", near, name))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	args := []any{"variables", strings.Join(unknown, ",")}
	if len(guesses) > 0 {
		args = append(args, "hint", "did you mean "+strings.Join(guesses, " "))
	}
	return []note{{slog.LevelWarn, "unknown variables ignored", args}}
}

// closest returns the variable in names nearest to name, if name is a
// likely misspelling of it (at most a third of the letters after SPOTINIT_
// differ), else "".
func closest(name string, names []string) string {
	s := strings.TrimPrefix(name, "SPOTINIT_")
	best, bestD := "", len(s)/3+1
	for _, n := range names {
		if d := editDistance(s, strings.TrimPrefix(n, "SPOTINIT_")); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
