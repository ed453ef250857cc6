package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spotinit/spotinit/earlysignal"
	"github.com/spotinit/spotinit/reaper"
	"github.com/spotinit/spotinit/supervisor"
	"golang.org/x/sys/unix"
)

// This file turns the options about the ends of the app's life into the
// packages' settings: --forward-delay, --exit-map, --parent-death-signal and
// --child-death-signal. Each function takes the value as written and returns
// an error that does not name the option: the caller does.

// checkForwardDelay refuses a --forward-delay that the stop could never
// honour: longer than what a full stop budget (stop - margin) leaves before
// the child's reserve, min(5s, budget/4).
func checkForwardDelay(delay, stop, margin time.Duration) error {
	if m := supervisor.MaxForwardDelay(stop, margin); delay > m {
		return fmt.Errorf("must be at most %s: the child keeps %s of the %s between the stop signal and spotinit's SIGKILL (stop timeout %s less kill margin %s)",
			m, stop-margin-m, stop-margin, stop, margin)
	}
	return nil
}

// exitMapOption parses --exit-map: each FROM:TO, and each value (from the
// command line or SPOTINIT_EXIT_MAP) may be a comma-separated list, as
// --rewrite's. A status mapped to itself cannot act, and one mapped twice
// to different statuses is ambiguous: both are errors; the same mapping
// twice is not. An error names the value at fault, and the one map in it
// when the value holds several.
func exitMapOption(o option) (map[int]int, error) {
	if len(o.values) == 0 {
		return nil, nil
	}
	m := make(map[int]int)
	for _, v := range o.values {
		specs := strings.Split(v, ",")
		given := o
		given.value = v
		for _, spec := range specs {
			spec = strings.TrimSpace(spec)
			if spec == "" && len(specs) > 1 {
				continue // "143:0," as "143:0", as --notices takes "spot,"
			}
			fail := func(err error) error {
				msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("exit map %q: ", spec))
				if len(specs) > 1 {
					msg = fmt.Sprintf("exit map %q: %s", spec, msg)
				}
				return bad(given, "%s", msg)
			}
			from, to, err := supervisor.ParseExitMap(spec)
			if err != nil {
				return nil, fail(err)
			}
			if from == to {
				return nil, fail(fmt.Errorf("maps %d to itself, which changes nothing", from))
			}
			if prev, dup := m[from]; dup && prev != to {
				return nil, fail(fmt.Errorf("%d is already mapped to %d", from, prev))
			}
			m[from] = to
		}
	}
	return m, nil
}

// parseChildDeathSignal parses --child-death-signal: a signal name or
// number, or 0 for none. The stop signals (SIGSTOP, SIGTSTP, SIGTTIN,
// SIGTTOU) are refused: sent once spotinit is gone, they would freeze the
// app with nobody left to continue it, the opposite of ending it.
func parseChildDeathSignal(s string) (syscall.Signal, error) {
	if strings.TrimSpace(s) == "0" {
		return 0, nil
	}
	sig, err := supervisor.ParseSignal(s)
	if err != nil {
		return 0, err
	}
	switch sig {
	case syscall.SIGSTOP, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU:
		return 0, fmt.Errorf("%s would freeze the app once spotinit is gone, with nobody left to continue it: want TERM, KILL or a signal the app ends on, or 0 for none", supervisor.SignalName(sig))
	}
	return sig, nil
}

// parseParentDeathSignal parses --parent-death-signal: SIGKILL, or one of
// the signals spotinit catches and forwards (a stop signal among them
// starts the stop sequence). Any other would do nothing (SIGPIPE, SIGURG,
// SIGCHLD: caught and kept, or the Go runtime's), crash the Go runtime
// (SIGSEGV and the like, sent from outside) or stop spotinit for good
// (SIGSTOP): settings that cannot act as meant are refused.
func parseParentDeathSignal(s string) (syscall.Signal, error) {
	sig, err := supervisor.ParseSignal(s)
	if err != nil {
		return 0, err
	}
	if sig != syscall.SIGKILL && !supervisor.Forwarded(sig) {
		return 0, fmt.Errorf("spotinit would not act on %s: want KILL or a signal it forwards (TERM and INT start the stop sequence)", supervisor.SignalName(sig))
	}
	return sig, nil
}

// watchParent arms --parent-death-signal and, when the parent has died
// already, sends sig to spotinit itself, as the kernel would have: it then
// arrives like any other (a stop signal starts the stop once the child runs).
func watchParent(sig syscall.Signal, log *slog.Logger) error {
	gone, err := armParentDeath(sig, earlysignal.Parent())
	if err != nil {
		return err
	}
	if gone {
		earlysignal.Ready() // so that no caught signal is dropped for want of a handler
		log.Info("parent died before spotinit started watching it", "signal", supervisor.SignalName(sig),
			"parent_at_start", earlysignal.Parent(), "parent", syscall.Getppid())
		return syscall.Kill(os.Getpid(), sig)
	}
	return nil
}

// armParentDeath asks the kernel to send sig to spotinit when its parent
// dies (PR_SET_PDEATHSIG), and reports whether the parent had died already:
// the kernel sends nothing for a death before the request, but the parent
// pid then differs from startParent, the one seen at start. A parent
// outside the PID namespace shows as 0 before and after its death, so for a
// container's PID 1 only the kernel's signal can tell.
//
// The kernel ties the signal to the parent's thread that forked spotinit,
// as it does for tini -p: a multi-threaded parent whose forking thread
// ends sends it too.
//
// The kernel keeps the request per thread and drops it when that thread
// ends, so it is made on the reaper's fork thread, which lives as long as
// spotinit.
func armParentDeath(sig syscall.Signal, startParent int) (gone bool, err error) {
	reaper.OnForkThread(func() {
		err = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(sig), 0, 0, 0)
	})
	if err != nil {
		return false, fmt.Errorf("prctl(PR_SET_PDEATHSIG, %d): %w", sig, err)
	}
	return syscall.Getppid() != startParent, nil
}
