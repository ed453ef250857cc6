package supervisor

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/spotinit/spotinit/earlysignal"
	"golang.org/x/sys/unix"
)

// What spotinit does with each signal is written once, in earlysignal's
// table; these read it.

// Forwarded reports whether spotinit forwards sig to the child: an
// allow-list. Everything else that spotinit catches stays with spotinit;
// above all the Go runtime's own SIGURG (goroutine preemption) and SIGCHLD
// are never forwarded.
func Forwarded(sig syscall.Signal) bool { return earlysignal.Is(sig, earlysignal.Forwarded) }

// isStop reports whether sig starts the stop sequence.
func isStop(sig syscall.Signal) bool { return earlysignal.Is(sig, earlysignal.StartsStop) }

// isJobStop reports whether sig is a terminal job-control stop: spotinit
// forwards it and then stops itself.
func isJobStop(sig syscall.Signal) bool { return earlysignal.Is(sig, earlysignal.JobStop) }

// ParseSignal parses a signal name with or without the SIG prefix, in any
// case ("TERM", "sigterm", "SIGTERM"), or a number from 1 to 64.
func ParseSignal(s string) (syscall.Signal, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty signal name")
	}
	if n, err := strconv.Atoi(t); err == nil {
		if n < 1 || n > 64 {
			return 0, fmt.Errorf("signal number %d out of range 1-64", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(t)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// ParseRewrite parses one FROM:TO rewrite. TO may be 0, meaning the signal
// is dropped instead of forwarded.
func ParseRewrite(spec string) (from, to syscall.Signal, err error) {
	f, t, ok := strings.Cut(spec, ":")
	if !ok {
		return 0, 0, fmt.Errorf("rewrite %q: want FROM:TO, like TERM:QUIT", spec)
	}
	if from, err = ParseSignal(f); err != nil {
		return 0, 0, fmt.Errorf("rewrite %q: %w", spec, err)
	}
	if strings.TrimSpace(t) == "0" {
		return from, 0, nil
	}
	if to, err = ParseSignal(t); err != nil {
		return 0, 0, fmt.Errorf("rewrite %q: %w", spec, err)
	}
	return from, to, nil
}

// SignalName returns the conventional name of sig ("SIGTERM"), or its number.
func SignalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return strconv.Itoa(int(sig))
}
