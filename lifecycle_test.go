package main

import (
	"maps"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/spotinit/spotinit/reaper"
	"golang.org/x/sys/unix"
)

func TestExitMapOption(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   map[int]int
		err    string
	}{
		{values: nil, want: nil},
		{values: []string{"143:0"}, want: map[int]int{143: 0}},
		{values: []string{"143:0", "130:0"}, want: map[int]int{143: 0, 130: 0}},
		{values: []string{"143:0, 130:0,137:1"}, want: map[int]int{143: 0, 130: 0, 137: 1}},
		{values: []string{"143:0", "143:0"}, want: map[int]int{143: 0}},
		{values: []string{"143:0,143:1"}, err: `exit map "143:1": 143 is already mapped to 0`},
		{values: []string{"143"}, err: `--exit-map "143": want FROM:TO, like 143:0`},
		{values: []string{"143:0,"}, want: map[int]int{143: 0}}, // a trailing comma is layout
		{values: []string{","}, want: map[int]int{}},
		{values: []string{"143:0\n130:0"}, err: `is not an exit status`}, // commas only, as --rewrite
		{values: []string{"1:300"}, err: `"300" is not an exit status from 0 to 255`},
	} {
		got, err := exitMapOption(option{name: "exit-map", src: "--exit-map", values: tc.values})
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.values, err)
		case tc.err == "" && !maps.Equal(got, tc.want):
			t.Errorf("%q: got %v, want %v", tc.values, got, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one with %q", tc.values, err, tc.err)
		}
	}
}

func TestDeathSignalOptions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
		err  string
	}{
		{"TERM", syscall.SIGTERM, ""},
		{"SIGINT", syscall.SIGINT, ""},
		{"kill", syscall.SIGKILL, ""},
		{"USR1", syscall.SIGUSR1, ""},
		{"1", syscall.SIGHUP, ""},
		{"PIPE", 0, "spotinit would not act on SIGPIPE: want KILL or a signal it forwards"},
		{"SEGV", 0, "would not act on SIGSEGV"},
		{"STOP", 0, "would not act on SIGSTOP"},
		{"URG", 0, "would not act on SIGURG"},
		{"0", 0, "out of range"},
		{"BOGUS", 0, `unknown signal "BOGUS"`},
	} {
		got, err := parseParentDeathSignal(tc.in)
		if tc.err == "" && (err != nil || got != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseParentDeathSignal(%q) = %v, %v; want %v, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
	for _, tc := range []struct {
		in   string
		want syscall.Signal
		ok   bool
	}{
		{"TERM", syscall.SIGTERM, true},
		{"0", 0, true},
		{" 0 ", 0, true},
		{"KILL", syscall.SIGKILL, true},
		{"USR2", syscall.SIGUSR2, true},
		{"65", 0, false},
		{"", 0, false},
		{"NOPE", 0, false},
	} {
		got, err := parseChildDeathSignal(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseChildDeathSignal(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestCheckForwardDelay(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		delay, stop, margin time.Duration
		err                 string
	}{
		{0, 30 * s, 2 * s, ""},
		{23 * s, 30 * s, 2 * s, ""},
		{24 * s, 30 * s, 2 * s, "must be at most 23s: the child keeps 5s of the 28s between the stop signal and spotinit's SIGKILL (stop timeout 30s less kill margin 2s)"},
		{6 * s, 10 * s, 2 * s, ""},
		{7 * s, 10 * s, 2 * s, "must be at most 6s: the child keeps 2s of the 8s"},
	} {
		err := checkForwardDelay(tc.delay, tc.stop, tc.margin)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("checkForwardDelay(%s, %s, %s) = %v, want %q", tc.delay, tc.stop, tc.margin, err, tc.err)
		}
	}
}

// TestArmParentDeath: the request lands on the reaper's fork thread, which
// lives as long as spotinit (the kernel keeps it per thread), and a parent
// pid other than the one seen at start means the parent died before it.
func TestArmParentDeath(t *testing.T) {
	t.Cleanup(func() {
		reaper.OnForkThread(func() { _ = unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0) })
	})
	gone, err := armParentDeath(syscall.SIGUSR2, os.Getppid())
	if err != nil || gone {
		t.Fatalf("armParentDeath with the living parent = %v, %v; want false, nil", gone, err)
	}
	var got int32
	reaper.OnForkThread(func() {
		_ = unix.Prctl(unix.PR_GET_PDEATHSIG, uintptr(unsafe.Pointer(&got)), 0, 0, 0)
	})
	if syscall.Signal(got) != syscall.SIGUSR2 {
		t.Errorf("the fork thread's parent-death signal is %d, want SIGUSR2", got)
	}
	gone, err = armParentDeath(syscall.SIGUSR2, os.Getppid()+1)
	if err != nil || !gone {
		t.Errorf("armParentDeath with another parent at start = %v, %v; want true, nil", gone, err)
	}
}
