package preflight

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RoleReport says how orphans of the app would be reaped.
type RoleReport struct {
	PID int `json:"pid"`
	// Role is "pid1", "subreaper" or "none".
	Role string `json:"role"`
	// PID1 names the program that is PID 1 when spotinit is not
	// (from /proc/1/comm; "" when unknown).
	PID1   string `json:"pid1_program,omitempty"`
	Detail string `json:"detail"`
}

// The roles.
const (
	rolePID1      = "pid1"
	roleSubreaper = "subreaper"
	roleNone      = "none"
)

func checkRole(cfg *Config, r *Report) RoleReport {
	rr := RoleReport{PID: cfg.getpid()}
	if rr.PID == 1 {
		rr.Role = rolePID1
		rr.Detail = "orphans come to spotinit, which reaps them, and the stop signal reaches spotinit first"
		return rr
	}
	if b, err := os.ReadFile(filepath.Join(cfg.root, "proc/1/comm")); err == nil {
		rr.PID1 = strings.TrimSpace(string(b))
	}
	err := cfg.setSubreaper()
	if err == nil {
		rr.Role = roleSubreaper
		rr.Detail = "PR_SET_CHILD_SUBREAPER works: orphans of the app come to spotinit, which reaps them"
		switch rr.PID1 {
		case "spotinit":
			rr.Detail += "; PID 1 is another spotinit (docker exec or ECS Exec into a running container?), the one that acts there"
		case "":
		default:
			rr.Detail += "; PID 1 (" + rr.PID1 + ") must pass the stop signal on to spotinit"
		}
		return rr
	}
	rr.Role = roleNone
	why := err.Error()
	switch {
	case errors.Is(err, syscall.EINVAL):
		why = "prctl(PR_SET_CHILD_SUBREAPER) is not supported here: EINVAL (a kernel before Linux 3.4, or an emulator such as qemu-user)"
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ENOSYS):
		why = "a seccomp profile or sandbox refuses prctl(PR_SET_CHILD_SUBREAPER): " + why
	}
	pid1 := rr.PID1
	if pid1 == "" {
		pid1 = "PID 1"
	}
	rr.Detail = fmt.Sprintf("neither PID 1 nor a child subreaper (%s): orphans of the app go to %s, which may never reap them, and spotinit cannot wait for them at a stop", why, pid1)
	r.add(Warning, "role", "orphans will not be reaped by spotinit: "+why,
		"run spotinit as the container's entrypoint (PID 1), or allow prctl in the seccomp profile")
	return rr
}

// probeSubreaper makes this process a child subreaper, to see that it can,
// and restores the setting it found: --check starts no children, so the
// attribute never acts.
func probeSubreaper() error {
	var was int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&was)), 0, 0, 0); err != nil {
		return fmt.Errorf("read PR_GET_CHILD_SUBREAPER: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set PR_SET_CHILD_SUBREAPER: %w", err)
	}
	if was == 0 {
		// Ignored on failure: the probe has its answer.
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	}
	return nil
}
