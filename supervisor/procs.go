package supervisor

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"syscall"
)

// signalHandled reports whether pid catches or ignores sig, from the SigCgt
// and SigIgn masks of /proc/PID/status. ok is false when it cannot be told:
// no such process, or a /proc that is not of spotinit's own PID namespace
// (a pid there names another process).
func signalHandled(pid int, sig syscall.Signal) (handled, ok bool) {
	if self, err := os.Readlink("/proc/self"); err != nil || self != strconv.Itoa(os.Getpid()) {
		return false, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false, false
	}
	bit := uint64(1) << (uint(sig) - 1)
	found := 0
	for _, line := range bytes.Split(b, []byte("\n")) {
		name, val, cut := bytes.Cut(line, []byte(":"))
		if !cut || !(string(name) == "SigCgt" || string(name) == "SigIgn") {
			continue
		}
		mask, err := strconv.ParseUint(string(bytes.TrimSpace(val)), 16, 64)
		if err != nil {
			return false, false
		}
		found++
		if mask&bit != 0 {
			return true, true
		}
	}
	return false, found == 2
}

// descendants returns the living (non-zombie) descendants of spotinit
// according to /proc, by pid as seen in that /proc. Process trees change
// while they are read: callers that must catch every process repeat the
// scan. An unreadable /proc yields nothing.
func descendants() []int {
	self, err := os.Readlink("/proc/self")
	if err != nil {
		return nil
	}
	root, err := strconv.Atoi(self)
	if err != nil {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := make(map[int][]int)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, state, ok := readStat(pid)
		if !ok || state == "Z" {
			continue
		}
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// procState returns the state letter of pid in /proc/PID/stat ("R", "S",
// "D", "Z", …), or "" when there is no such process.
func procState(pid int) string {
	_, state, _ := readStat(pid)
	return state
}

// stateName spells out a state letter of /proc/PID/stat for the log.
func stateName(state string) string {
	name, ok := map[string]string{
		"R": "running", "S": "sleeping", "D": "disk sleep", "T": "stopped", "t": "tracing stop",
		"X": "dead", "Z": "zombie", "P": "parked", "I": "idle",
	}[state]
	switch {
	case state == "":
		return "gone"
	case ok:
		return state + " (" + name + ")"
	}
	return state
}

// readStat returns the parent pid of pid and its state letter.
func readStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	// The command name is in parentheses and may itself contain ") ":
	// the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, "", false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(string(f[1]))
	if err != nil {
		return 0, "", false
	}
	return ppid, string(f[0]), true
}

// signalDescendants sends sig to every descendant of spotinit and returns
// those it signalled, the living child left out (killTree counts it apart).
// As PID 1 of a PID namespace that is kill(-1), which reaches every process
// in the namespace but spotinit; otherwise each descendant found in /proc
// (never kill(-1) outside a namespace of our own).
func (s *run) signalDescendants(sig syscall.Signal) []int {
	ds := s.kern.Descendants()
	// Once the child is gone its pid may be another descendant's.
	child := func(p int) bool { return !s.exited && p == s.pid }
	if s.pid1 {
		if err := s.kern.Kill(-1, sig); err != nil {
			return nil // ESRCH: nobody left
		}
		return slices.DeleteFunc(ds, child)
	}
	var done []int
	for _, p := range ds {
		if s.kern.Kill(p, sig) == nil && !child(p) {
			done = append(done, p)
		}
	}
	return done
}
