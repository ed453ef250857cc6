package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spotinit/spotinit/supervisor"
)

// cmdPtyrun runs a command on a new pseudo-terminal, the way `docker run -it`
// does: the command leads a new session with the terminal as its controlling
// terminal. It then plays a dialogue against it:
//
//	ptyrun [-pidns] [-status FILE] DIALOGUE -- COMMAND [ARG...]
//
// DIALOGUE is a file of lines: "expect REGEXP" waits (bounded) for the
// terminal output to match, consuming it; "send TEXT" types TEXT, with Go
// escapes such as \n and \x03 (Ctrl-C); "signal SIG" sends SIG to the
// command. The whole transcript goes to stdout, and the exit status (128+N
// for signal N) to the -status file.
func cmdPtyrun(ts *testscript.TestScript, neg bool, args []string) {
	var pidns bool
	var statusFile string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "--" {
		switch args[0] {
		case "-pidns":
			pidns = true
		case "-status":
			statusFile, args = args[1], args[1:]
		default:
			ts.Fatalf("ptyrun: unknown flag %s", args[0])
		}
		args = args[1:]
	}
	if len(args) < 3 || args[1] != "--" {
		ts.Fatalf("usage: ptyrun [-pidns] [-status FILE] DIALOGUE -- COMMAND [ARG...]")
	}
	dialogue := strings.Split(strings.TrimSpace(ts.ReadFile(args[0])), "\n")
	cmd := exec.Command(args[2], args[3:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = envOf(ts)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if pidns {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	}
	ptmx, err := pty.StartWithAttrs(cmd, &pty.Winsize{Rows: 24, Cols: 80}, cmd.SysProcAttr)
	ts.Check(err)
	defer ptmx.Close()

	var mu sync.Mutex
	var out bytes.Buffer // everything the terminal printed
	consumed := 0
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			out.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	waitDone := make(chan error, 1)
	go func() { waitDone <- cmd.Wait() }()

	transcript := func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	for _, line := range dialogue {
		verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch verb {
		case "", "#":
		case "expect":
			re := regexp.MustCompile(arg)
			deadline := time.Now().Add(waitTimeout)
			for {
				t := transcript()
				if loc := re.FindStringIndex(t[consumed:]); loc != nil {
					consumed += loc[1]
					break
				}
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					ts.Fatalf("ptyrun: timed out expecting %q; terminal shows:\n%s", arg, t)
				}
				time.Sleep(5 * time.Millisecond) // polling interval
			}
		case "send":
			text, err := strconv.Unquote(`"` + arg + `"`)
			ts.Check(err)
			_, err = ptmx.Write([]byte(text))
			ts.Check(err)
		case "signal":
			sig, err := supervisor.ParseSignal(arg)
			ts.Check(err)
			ts.Check(cmd.Process.Signal(sig))
		default:
			ts.Fatalf("ptyrun: unknown dialogue verb %q", verb)
		}
	}
	var werr error
	select {
	case werr = <-waitDone:
	case <-time.After(waitTimeout):
		_ = cmd.Process.Kill()
		ts.Fatalf("ptyrun: command did not exit; terminal shows:\n%s", transcript())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else if werr != nil {
		ts.Fatalf("ptyrun: %v", werr)
	}
	// The terminal's last output may still be in flight after the exit.
	select {
	case <-readDone:
	case <-time.After(time.Second):
	}
	fmt.Fprint(ts.Stdout(), transcript())
	if statusFile != "" {
		ts.Check(os.WriteFile(ts.MkAbs(statusFile), []byte(strconv.Itoa(code)+"\n"), 0o644))
	}
	if neg != (code != 0) && statusFile == "" {
		ts.Fatalf("ptyrun: exit status %d", code)
	}
}

func envOf(ts *testscript.TestScript) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "WORK", "AWS_EC2_METADATA_DISABLED"} {
		env = append(env, k+"="+ts.Getenv(k))
	}
	return append(env, "TERM=dumb", "PS1=$ ")
}

// cmdProcstate waits until the process whose pid is in FILE is in a state
// from /proc/PID/stat matching REGEXP: procstate FILE REGEXP (T: stopped).
func cmdProcstate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: procstate PIDFILE REGEXP")
	}
	pid := readPid(ts.ReadFile(args[0]))
	re := regexp.MustCompile("^(?:" + args[1] + ")$")
	deadline := time.Now().Add(waitTimeout)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		state := "gone"
		if err == nil {
			s := string(b)
			state = strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
		}
		if re.MatchString(state) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("process %d is in state %s, not %s", pid, state, args[1])
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}
