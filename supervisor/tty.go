package supervisor

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spotinit/spotinit/earlysignal"
	"golang.org/x/sys/unix"
)

// childAttr decides how the child is placed among sessions, process groups
// and the terminal on stdin, the way dumb-init (default) and tini
// (--single-child) do:
//
//   - Default: the child leads a new session, so that signals can go to its
//     whole process group. If stdin is a terminal that spotinit controls as
//     session leader (docker run -it), spotinit gives it up (TIOCNOTTY) and the
//     child takes it as its controlling terminal: it is then the foreground
//     group, Ctrl-C and Ctrl-Z reach it directly, and a shell gets job
//     control. A terminal that belongs to no session is taken too. A
//     terminal that belongs to another session (spotinit started from an
//     interactive shell) is left alone: the child reads it freely, and the
//     terminal's signals reach spotinit, which forwards them.
//   - Single child: the child gets a process group of its own in spotinit's
//     session and, when spotinit is in the foreground of its terminal, the
//     terminal's foreground.
func childAttr(single bool, log *slog.Logger) *syscall.SysProcAttr {
	tty := isTerminal(0)
	if single {
		attr := &syscall.SysProcAttr{Setpgid: true}
		if tty && foreground(0) {
			attr.Foreground = true
			attr.Ctty = 0
		}
		return attr
	}
	attr := &syscall.SysProcAttr{Setsid: true}
	if !tty {
		return attr
	}
	ttySid, err := unix.IoctlGetInt(0, unix.TIOCGSID)
	switch {
	case err != nil:
		// ENOTTY here means the terminal has no session: free to take.
		attr.Setctty = true
	case ttySid == unix.Getpid() && unix.Getpid() == sid():
		if releaseTerminal(log) {
			attr.Setctty = true
		}
	}
	return attr
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

func sid() int {
	s, err := unix.Getsid(0)
	if err != nil {
		return -1
	}
	return s
}

// foreground reports whether spotinit's process group is the foreground
// group of the terminal on fd.
func foreground(fd int) bool {
	pg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil && pg == unix.Getpgrp()
}

// releaseTerminal detaches spotinit, a session leader, from its controlling
// terminal so that the child's new session can take it. The kernel answers
// TIOCNOTTY from a session leader with SIGHUP and SIGCONT to the terminal's
// foreground group, which is spotinit itself: both are ignored for that
// moment so they are neither forwarded nor mistaken for the user's.
func releaseTerminal(log *slog.Logger) bool {
	sigs := []os.Signal{syscall.SIGHUP, syscall.SIGCONT}
	signal.Ignore(sigs...)
	err := unix.IoctlSetInt(0, unix.TIOCNOTTY, 0)
	earlysignal.Renotify(sigs...)
	if err != nil {
		log.Debug("cannot release terminal", "err", err)
		return false
	}
	return true
}
