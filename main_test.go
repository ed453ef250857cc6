package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/spotinit/spotinit/earlysignal"
	"github.com/spotinit/spotinit/supervisor"
)

func TestMain(m *testing.M) {
	testscript.Main(removeBuilt{m}, map[string]func(){
		"spotinit": func() { os.Exit(run(os.Args)) },
		// The helpers share the binary, and so earlysignal's init, with
		// spotinit: give them the runtime's default signal handling back.
		"testchild": func() { defaultSignals(); os.Exit(testChild(os.Args[1:])) },
		"launch":    func() { earlysignal.Ready(); signal.Reset(); os.Exit(launch(os.Args[1:])) },
	})
}

// buildFlags are the flags users build spotinit with (see the README):
// the entry stub that records inherited signal dispositions needs -E.
var buildFlags = []string{"-trimpath", "-tags=urfave_cli_no_docs", "-ldflags=-s -w -E=_spotinit_rt0 -X main.version=test-build"}

var built struct {
	once sync.Once
	dir  string
	err  error
}

// removeBuilt runs the tests, then removes the binary buildSpotinit built.
type removeBuilt struct{ m *testing.M }

func (r removeBuilt) Run() int {
	if raceEnabled {
		// A -race binary sleeps a second at exit (the race runtime's
		// atexit_sleep_ms), and the tests start thousands of them: spotinit
		// and the helpers. A race still fails the process, with status 66.
		os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	code := r.m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	return code
}

// buildSpotinit builds the real spotinit binary once per test run, the way
// users build it, and returns the directory holding it. Under -race the
// binary is built with -race too, so races in real runs fail the tests.
func buildSpotinit(t testing.TB) string {
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "spotinit-bin")
		if built.err != nil {
			return
		}
		args := append([]string{"build"}, buildFlags...)
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "-o", filepath.Join(built.dir, "spotinit"), ".")...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if raceEnabled {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=1") // the race detector needs cgo
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

// defaultSignals gives the helper child the default signal handling of an
// ordinary program: earlysignal's init (in this binary too) caught signals
// from the start, and any that arrived before now are raised again. A
// signal the runtime has received but not yet delivered when Reset runs is
// lost, so a script waits for testchild's ready file before signalling it
// (signals_startup, whose SIGTERM comes with the child's start, runs sleep).
func defaultSignals() {
	earlysignal.Ready()
	signal.Reset()
	for _, c := range []<-chan os.Signal{earlysignal.Stop(), earlysignal.Other()} {
		for drained := false; !drained; {
			select {
			case s := <-c:
				_ = syscall.Kill(os.Getpid(), s.(syscall.Signal))
			default:
				drained = true
			}
		}
	}
}

func TestScripts(t *testing.T) {
	p := scriptParams(buildSpotinit(t))
	p.Dir = "testscripts"
	runScripts(t, p)
}

// scriptParams are the testscript parameters for running scripts against the
// spotinit in directory bin (TestScripts, TestBuilds): that spotinit comes
// first on the scripts' PATH, then the helper commands of TestMain.
func scriptParams(bin string) testscript.Params {
	return testscript.Params{
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", bin+string(os.PathListSeparator)+env.Getenv("PATH"))
			// The scripts' processes must never reach a real IMDS.
			env.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			env.Values[imdsKey{}] = &imdsHolder{}
			env.Setenv("AEMM", os.Getenv("SPOTINIT_AEMM_BIN"))
			if g := os.Getenv("GORACE"); g != "" {
				env.Setenv("GORACE", g) // see removeBuilt.Run
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"signal":     cmdSignal,
			"waitfile":   cmdWaitfile,
			"ptyrun":     cmdPtyrun,
			"procstate":  cmdProcstate,
			"fakeimds":   cmdFakeimds,
			"imdsstat":   cmdImdsstat,
			"reportfile": cmdReportfile,
		},
		Condition: scriptCondition,
	}
}

// The require switches turn a test that would skip for want of something
// the machine lacks into a failure. .ci/run sets every one of them, so that
// CI cannot pass without running what it claims to run:
//
//	SPOTINIT_REQUIRE_PIDNS=1  a new PID namespace (root): the PID-1 scripts and the TestHard* tests
//	SPOTINIT_REQUIRE_TOOLS=1  python3, bash and qemu-aarch64-static (Debian: python3-minimal, bash, qemu-user-static)
//	SPOTINIT_REQUIRE_AEMM=1   AWS's IMDS mock, SPOTINIT_AEMM_BIN (tools/aemm/build.sh)
const (
	requirePIDNS = "SPOTINIT_REQUIRE_PIDNS"
	requireTools = "SPOTINIT_REQUIRE_TOOLS"
	requireAEMM  = "SPOTINIT_REQUIRE_AEMM"
)

// required reports whether the require switch name is on.
func required(name string) bool { return os.Getenv(name) == "1" }

// scriptCondition answers the scripts' own conditions. Each one that a
// script skips on fails instead when its require switch is on.
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "pidns":
		// PID 1 of a new PID namespace (root, or a user namespace that allows it).
		if err := newPIDErr(); err != nil {
			if required(requirePIDNS) {
				return false, fmt.Errorf("%s=1 but a new PID namespace cannot be made: %v", requirePIDNS, err)
			}
			return false, nil
		}
		return true, nil
	case "python3", "bash":
		if _, err := exec.LookPath(cond); err != nil {
			if required(requireTools) {
				return false, fmt.Errorf("%s=1 but %s is not installed: %v", requireTools, cond, err)
			}
			return false, nil
		}
		return true, nil
	case "aemm":
		// AWS's amazon-ec2-metadata-mock, built by tools/aemm/build.sh.
		have := os.Getenv("SPOTINIT_AEMM_BIN") != ""
		if !have && required(requireAEMM) {
			return false, fmt.Errorf("%s=1 but SPOTINIT_AEMM_BIN is unset: build it with tools/aemm/build.sh", requireAEMM)
		}
		return have, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// TestRequireSwitches: without its require switch a missing tool makes a
// script skip; with it, the script fails, naming the switch.
func TestRequireSwitches(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no python3, no bash
	t.Setenv("SPOTINIT_AEMM_BIN", "")
	for _, tc := range []struct{ cond, require string }{
		{"python3", requireTools},
		{"bash", requireTools},
		{"aemm", requireAEMM},
	} {
		t.Setenv(tc.require, "")
		if ok, err := scriptCondition(tc.cond); ok || err != nil {
			t.Errorf("[%s] without %s: %v, %v; want false, nil (skip)", tc.cond, tc.require, ok, err)
		}
		t.Setenv(tc.require, "1")
		if ok, err := scriptCondition(tc.cond); ok || err == nil || !strings.Contains(err.Error(), tc.require+"=1") {
			t.Errorf("[%s] with %s=1: %v, %v; want an error naming the switch", tc.cond, tc.require, ok, err)
		}
	}
}

// newPIDErr probes whether this process may start a child in a new PID
// namespace, and says why not.
func newPIDErr() error {
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	return cmd.Run()
}

// Bounds in the tests catch hangs and gross regressions, never a busy
// machine: a loaded 2-core CI machine must not be able to miss one. The
// figures themselves (how fast spotinit reaps, forwards, kills) live in the
// benchmark, go run ./bench.
const (
	// waitTimeout bounds every wait for a condition in the scripts; it
	// only limits how long a failing test takes.
	waitTimeout = 20 * time.Second
	// lateBound is how much later than its deadline a timed action (the
	// SIGKILL at the stop deadline) may come before a test calls the
	// deadline lost rather than the machine busy. Early is never allowed.
	lateBound = 5 * time.Second
	// cpuPerOrphanBound is ten times spotinit's own CPU per reaped orphan
	// in the benchmark (0.2-0.3 ms each, in a burst of 5,000).
	cpuPerOrphanBound = 2500 * time.Microsecond
	// reapPerOrphanBound, times the number of orphans and added to
	// waitTimeout, bounds how long a burst of orphans may take to be
	// reaped: twenty times the benchmark's wall time per orphan, which a
	// -race build on a loaded machine stays well inside.
	reapPerOrphanBound = 5 * time.Millisecond
)

// cmdSignal sends a signal to the pid in a file: signal SIG FILE.
func cmdSignal(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: signal SIG PIDFILE")
	}
	sig, err := supervisor.ParseSignal(args[0])
	ts.Check(err)
	pid := readPid(ts.ReadFile(args[1]))
	if pid <= 0 {
		ts.Fatalf("no pid in %s", args[1])
	}
	ts.Check(syscall.Kill(pid, sig))
}

func readPid(s string) int {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// cmdWaitfile waits until a file exists and, if a regexp is given, until its
// content matches: waitfile FILE [REGEXP]. With !, it checks that the file
// does not match (or does not exist) right now.
func cmdWaitfile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitfile FILE [REGEXP]")
	}
	name := ts.MkAbs(args[0])
	var re *regexp.Regexp
	if len(args) == 2 {
		re = regexp.MustCompile(args[1])
	}
	matches := func() bool {
		b, err := os.ReadFile(name)
		return err == nil && (re == nil || re.Match(b))
	}
	if neg {
		if matches() {
			ts.Fatalf("%s matches %v", args[0], re)
		}
		return
	}
	deadline := time.Now().Add(waitTimeout)
	for !matches() {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(name)
			ts.Fatalf("timed out waiting for %s to match %v; it holds %q", args[0], re, b)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for state
	}
}

// launch starts a command the way a container runtime would and stands in
// for it: launch [-pidns] [-pidfile FILE] [-status FILE] [-stderr FILE] [-setsid] [-extrafd] -- COMMAND [ARG...].
// With -pidns the command is PID 1 of a new PID namespace. The command's pid
// (as this process sees it) goes to the -pidfile. Signals sent to launch are
// passed on. launch exits with the command's exit code, or 128+N when signal
// N killed it; with -status it writes that code to the file and exits 0, so
// that a script can assert the exact code. With -stderr the command's stderr
// also goes to FILE as it is written, so that a script can wait for a log
// line (waitfile) while the command runs; launch's own stderr still gets it
// all. -extrafd passes the command one more descriptor (3), as a careless
// parent would.
func launch(args []string) int {
	var pidns, setsid, extrafd bool
	var pidfile, statusfile, stderrfile string
	for len(args) > 0 && args[0] != "--" {
		switch args[0] {
		case "-pidns":
			pidns = true
		case "-setsid":
			setsid = true
		case "-extrafd":
			extrafd = true
		case "-pidfile", "-status", "-stderr":
			if len(args) < 2 {
				return 2
			}
			switch args[0] {
			case "-pidfile":
				pidfile = args[1]
			case "-status":
				statusfile = args[1]
			default:
				stderrfile = args[1]
			}
			args = args[1:]
		default:
			fmt.Fprintf(os.Stderr, "launch: unknown flag %s\n", args[0])
			return 2
		}
		args = args[1:]
	}
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: launch [-pidns] [-pidfile FILE] [-status FILE] [-stderr FILE] [-setsid] [-extrafd] -- COMMAND [ARG...]")
		return 2
	}
	args = args[1:]
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGCONT, syscall.SIGALRM)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if stderrfile != "" {
		f, err := os.OpenFile(stderrfile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(os.Stderr, "launch: %v\n", err)
			return 2
		}
		defer f.Close()
		cmd.Stderr = io.MultiWriter(os.Stderr, f)
		// Wait copies the output through a pipe: a descendant that keeps
		// it open after the command has exited must not hold launch up.
		cmd.WaitDelay = waitTimeout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
	if extrafd {
		// An inherited descriptor, as a careless parent passes on.
		cmd.ExtraFiles = []*os.File{os.Stdin}
	}
	if pidns {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "launch: %v\n", err)
		return 2
	}
	if pidfile != "" {
		if err := writeAtomic(pidfile, strconv.Itoa(cmd.Process.Pid)+"\n"); err != nil {
			fmt.Fprintf(os.Stderr, "launch: %v\n", err)
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case err := <-done:
			code := 0
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				code = ee.ExitCode()
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					code = 128 + int(ws.Signal())
				}
			case err != nil:
				fmt.Fprintf(os.Stderr, "launch: %v\n", err)
				return 2
			}
			if statusfile != "" {
				if err := writeAtomic(statusfile, strconv.Itoa(code)+"\n"); err != nil {
					fmt.Fprintf(os.Stderr, "launch: %v\n", err)
					return 2
				}
				return 0
			}
			return code
		}
	}
}

// writeAtomic writes a file so that readers never see it half written.
func writeAtomic(name, content string) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
