package reaper

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// probeLimit is how many descriptors are probed when /proc is unreadable.
const probeLimit = 1024

// closed in ProcAttr.Files makes the child close that descriptor before
// exec (syscall's forkAndExecInChild treats -1 so; os.StartProcess uses
// the same for a nil *File).
const closed = ^uintptr(0)

// closeInherited returns files extended with entries that close, in the new
// process, every other descriptor open in spotinit without close-on-exec.
// Go opens all of its own descriptors close-on-exec, but whatever spotinit
// inherited from its parent (a runtime, a shell, a CI job) is not, and
// ForkExec would otherwise pass those on to every process spotinit starts.
func closeInherited(files []uintptr) []uintptr {
	top := inheritedTop()
	if top < len(files) {
		return files
	}
	out := make([]uintptr, top+1)
	copy(out, files)
	for i := len(files); i < len(out); i++ {
		out[i] = closed
	}
	return out
}

// inheritedTop returns the highest descriptor above 2 that is open without
// close-on-exec, or 2 if there is none. Such descriptors can only be
// inherited ones, known at start-up, so the scan cannot race with another
// goroutine creating one.
func inheritedTop() int {
	var fds []int
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range entries {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
				fds = append(fds, fd)
			}
		}
	} else {
		for fd := 3; fd < probeLimit; fd++ {
			fds = append(fds, fd)
		}
	}
	top := 2
	for _, fd := range fds {
		// EBADF: not open (any more: ReadDir's own descriptor is gone).
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil && flags&unix.FD_CLOEXEC == 0 {
			top = max(top, fd)
		}
	}
	return top
}
