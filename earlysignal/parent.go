package earlysignal

import "syscall"

// startParent is the pid of spotinit's parent as package initialisation
// found it, as early as spotinit can look: a parent that dies before
// spotinit asks for its parent-death signal (--parent-death-signal) never
// sends it, and a parent pid that has changed since is the only trace.
var startParent = syscall.Getppid()

// Parent returns the pid of spotinit's parent when the process started (0
// when that parent is outside spotinit's PID namespace, as a container's
// PID 1 sees it).
func Parent() int { return startParent }
