package earlysignal

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The entry stub reads earlyCatch before any Go code runs, so it is a
// literal: it must say what the table says.
func TestEarlyCatchMatchesTable(t *testing.T) {
	var want uint64
	for _, s := range Caught(Early) {
		want |= 1 << (s - 1)
	}
	if earlyCatch != want {
		t.Errorf("earlyCatch = %v, the table's Early signals are %v", maskNames(earlyCatch), maskNames(want))
	}
}

func maskNames(m uint64) []string {
	var names []string
	for n := 1; n <= 64; n++ {
		if m&(1<<(n-1)) != 0 {
			names = append(names, unix.SignalName(syscall.Signal(n)))
		}
	}
	return names
}

func TestTableIsConsistent(t *testing.T) {
	seen := map[syscall.Signal]bool{}
	for _, e := range table {
		name := unix.SignalName(e.sig)
		if seen[e.sig] {
			t.Errorf("%s is in the table twice", name)
		}
		seen[e.sig] = true
		h := e.h
		if h&(StartsStop|JobStop) != 0 && h&Forwarded == 0 {
			t.Errorf("%s starts the stop or stops the job but is not forwarded", name)
		}
		if h&StartsStop != 0 && h&JobStop != 0 {
			t.Errorf("%s both starts the stop and stops the job", name)
		}
		// A fatal signal must be caught from exec on: the runtime's
		// default for it is to exit.
		if h&Fatal != 0 && h&Early == 0 {
			t.Errorf("%s is fatal but not caught early", name)
		}
	}
	// The runtime's preemption signal and the reaper's are never ours.
	for _, s := range []syscall.Signal{syscall.SIGURG, syscall.SIGCHLD, syscall.SIGKILL, syscall.SIGSTOP} {
		if Is(s, 0) {
			t.Errorf("%s is in the table", unix.SignalName(s))
		}
	}
	// The two Notify lists cover the table, once each.
	all := append(slices.Clone(StopSignals), OtherSignals...)
	if len(all) != len(table) {
		t.Errorf("StopSignals %v and OtherSignals %v do not split the table's %d signals", StopSignals, OtherSignals, len(table))
	}
	for _, s := range all {
		if !isCaught(s) {
			t.Errorf("%v is notified but not in the table", s)
		}
	}
	for _, s := range StopSignals {
		if !isStop(s) {
			t.Errorf("%v is on the stop channel but does not start the stop", s)
		}
	}
	for _, s := range OtherSignals {
		if isStop(s) {
			t.Errorf("%v starts the stop but is not on the stop channel", s)
		}
	}
	if !slices.Equal(Caught(Fatal), []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}) {
		// The Go runtime exits on these four, and only these, when nobody
		// has registered them (os/signal's package doc).
		t.Errorf("fatal signals %v, want TERM, INT, HUP and QUIT", Caught(Fatal))
	}
	if Is(syscall.SIGPIPE, Forwarded) || !isCaught(syscall.SIGPIPE) {
		t.Error("SIGPIPE must be caught and not forwarded")
	}
}

// The README's list of forwarded signals says what the table says.
func TestREADMEForwardedList(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "- **Forwarded**:")
	list, _, ok2 := strings.Cut(after, "after rewriting")
	if !ok || !ok2 {
		t.Fatal(`README.md has no "- **Forwarded**: … after rewriting" list`)
	}
	doc := regexp.MustCompile(`SIG[A-Z0-9]+`).FindAllString(list, -1)
	var want []string
	for _, s := range Caught(Forwarded) {
		want = append(want, unix.SignalName(s))
	}
	slices.Sort(doc)
	slices.Sort(want)
	if !slices.Equal(doc, want) {
		t.Errorf("README forwards %v; the table forwards %v", doc, want)
	}
}
