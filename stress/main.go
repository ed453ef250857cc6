// Command stress runs spotinit's long adversarial checks, the ones too long
// for the test suite; CI runs them briefly.
//
//	go run ./stress imds-faults [-duration 10m]   IMDS cycling through every fault, then a valid notice
//	go run ./stress soak [-duration 30m]          IMDS polling a healthy fake; resources at start and end
//	go run ./stress fuzz [-fuzztime 60s]          every fuzz target of the module, one after another
//	go run ./stress startup-window [-step 250us]  SIGTERM swept over the first 15 ms after exec (root, for PID 1)
//
// Each prints what it measured and exits non-zero when a property does not
// hold. They build spotinit themselves (as the README does) unless -spotinit
// names a binary. Never run against the real IMDS: the fakes are local.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spotinit/spotinit/simulator"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: stress imds-faults|soak|fuzz|startup-window [flags]")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "imds-faults":
		err = imdsFaults(args)
	case "soak":
		err = soak(args)
	case "fuzz":
		err = fuzz(args)
	case "startup-window":
		err = startupWindow(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stress: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("stress: PASS")
}

// buildSpotinit builds spotinit as the README does, unless path is given.
func buildSpotinit(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	return goBuild("spotinit", ".", "-tags=urfave_cli_no_docs", "-ldflags=-s -w -E=_spotinit_rt0")
}

// goBuild builds the package pkg, static and -trimpath, with the flags
// given, into a new temporary directory, as name.
func goBuild(name, pkg string, flags ...string) (string, error) {
	dir, err := os.MkdirTemp("", "stress-"+name)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", append(append([]string{"build", "-trimpath"}, flags...), "-o", out, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	return out, nil
}

// sample is a reading of spotinit's resources.
type sample struct {
	at      time.Duration
	rssKiB  int
	threads int
	fds     int
	cpu     time.Duration
}

func (s sample) String() string {
	return fmt.Sprintf("t=%-6s rss=%5d KiB threads=%2d fds=%2d cpu=%v", s.at.Round(time.Second), s.rssKiB, s.threads, s.fds, s.cpu)
}

func read(pid int, start time.Time) (sample, bool) {
	s := sample{at: time.Since(start)}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			s.rssKiB, _ = strconv.Atoi(f[1])
		case "Threads:":
			s.threads, _ = strconv.Atoi(f[1])
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = len(ents)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		st := string(b)
		f := strings.Fields(st[strings.LastIndexByte(st, ')')+1:])
		ut, _ := strconv.Atoi(f[11])
		sy, _ := strconv.Atoi(f[12])
		s.cpu = time.Duration(ut+sy) * 10 * time.Millisecond
	}
	return s, true
}

// run is one spotinit under observation.
type run struct {
	cmd    *exec.Cmd
	start  time.Time
	mu     sync.Mutex
	lines  []logLine // spotinit's stderr, timestamped on arrival
	done   chan error
	stderr io.ReadCloser
}

type logLine struct {
	at   time.Duration
	text string
}

func startSpotinit(bin string, args ...string) (*run, error) {
	r := &run{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	r.cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_DISABLED=")
	r.cmd.Stdout = os.Stdout
	var err error
	if r.stderr, err = r.cmd.StderrPipe(); err != nil {
		return nil, err
	}
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(r.stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			r.mu.Lock()
			r.lines = append(r.lines, logLine{time.Since(r.start), sc.Text()})
			r.mu.Unlock()
		}
	}()
	go func() { <-copied; r.done <- r.cmd.Wait() }()
	return r, nil
}

func (r *run) log() []logLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]logLine(nil), r.lines...)
}

// watch samples spotinit every interval until it exits or d has passed,
// printing each sample; it returns the samples and whether spotinit exited.
func (r *run) watch(d, every time.Duration) ([]sample, bool) {
	var out []sample
	tick := time.NewTicker(every)
	defer tick.Stop()
	end := time.After(d)
	for {
		if s, ok := read(r.cmd.Process.Pid, r.start); ok {
			out = append(out, s)
			fmt.Println(" ", s)
		}
		select {
		case err := <-r.done:
			r.done <- err
			return out, true
		case <-end:
			return out, false
		case <-tick.C:
		}
	}
}

// flat checks that the last sample's memory, threads and descriptors are
// within bounds of the first's taken after start-up.
func flat(samples []sample) error {
	if len(samples) < 2 {
		return errors.New("too few samples")
	}
	first, last := samples[1], samples[len(samples)-1] // [0] is still starting up
	if last.rssKiB > first.rssKiB+2048 {
		return fmt.Errorf("RSS grew from %d to %d KiB", first.rssKiB, last.rssKiB)
	}
	if last.threads > first.threads+2 {
		return fmt.Errorf("threads grew from %d to %d", first.threads, last.threads)
	}
	if last.fds > first.fds+2 {
		return fmt.Errorf("descriptors grew from %d to %d", first.fds, last.fds)
	}
	return nil
}

// imdsFaults runs spotinit against a fake IMDS that cycles through every
// fault it can show for the duration, then serves a valid Spot notice that
// appears, vanishes and reappears. The child must be untouched until then,
// warnings bounded per minute, resources flat, and the hooks run once.
func imdsFaults(args []string) error {
	fs := flag.NewFlagSet("imds-faults", flag.ExitOnError)
	duration := fs.Duration("duration", 10*time.Minute, "how long the faults cycle")
	bin := fs.String("spotinit", "", "spotinit binary (default: build it)")
	_ = fs.Parse(args)
	sp, err := buildSpotinit(*bin)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "stress-imds")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// The fault cycle: each phase lasts `phase`, the cycle repeats until
	// the duration is up; then the notice.
	faults := []simulator.Fault{
		{Path: "/latest/api/token", Delay: time.Hour}, // a token request that hangs
		{Path: "/latest/meta-data/spot", Status: 401}, // 401 loops: a token never accepted
		{Path: "/latest/api/token", Status: 403},      // IMDS turned off
		{Path: "", Status: 429},                       // throttled
		{Path: "", Status: 500},                       // broken
		{Path: "/latest/meta-data/spot", Drip: true, DripEvery: 300 * time.Millisecond, Body: `{"action":"terminate","time":"2020-01-01T00:00:00Z"}`}, // slow drip
		{Path: "/latest/meta-data/spot", Body: `{"action":`},                                                          // partial JSON
		{Path: "/latest/meta-data/spot", Body: `<html>not json</html>`},                                               // malformed
		{Path: "/latest/meta-data/spot", Body: `{"action":"terminate","time":"` + strings.Repeat("9", 200000) + `"}`}, // huge
		{Path: "/latest/meta-data/spot", Body: `{"action":"terminate","time":"2020-01-01T00:00:00Z"}`},                // a stale notice
		{Path: "", Reset: true}, // connections dropped
	}
	phase := max(*duration/time.Duration(len(faults)+1), 2*time.Second)
	var sc simulator.Scenario
	var t time.Duration
	for t < *duration {
		for _, f := range faults {
			if t >= *duration {
				break
			}
			f.From, f.Until = t, t+phase
			sc.Faults = append(sc.Faults, f)
			t += phase
		}
	}
	// The valid notice at the end: visible, vanishing (404), reappearing.
	sc.Spot = &simulator.SpotNotice{After: t, MovingTime: true}
	sc.Faults = append(sc.Faults, simulator.Fault{Path: "/latest/meta-data/spot", Status: 404, From: t + 3*time.Second, Until: t + 6*time.Second})

	// A refused phase too: the fake's port is closed for a while in the
	// middle, then opened again.
	// The server lives in ctx: cancelling it closes whichever is running.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := simulator.Start(ctx, "127.0.0.1:0", sc, nil)
	if err != nil {
		return err
	}
	url := srv.URL()
	addr := strings.TrimPrefix(url, "http://")
	go func() {
		time.Sleep(*duration / 2) // the refused phase begins: scheduling the fault, not waiting for state
		srv.Close()
		time.Sleep(phase) // as long as the other faults
		// Reopen on the same port with the rest of the scenario, shifted.
		rest := shift(sc, *duration/2+phase)
		for ctx.Err() == nil {
			if _, err := simulator.Start(ctx, addr, rest, nil); err == nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // the port may still be in TIME_WAIT
		}
	}()
	fmt.Printf("imds-faults: %d fault phases of %v over %v, then a valid notice; fake at %s\n", len(sc.Faults)-1, phase, *duration, url)

	hooklog := filepath.Join(work, "hooklog")
	r, err := startSpotinit(sp, "--imds", "on", "--imds-endpoint", url, "--imds-poll-interval", "1s",
		"--stop-on-notice", "--stop-timeout", "20s", "--pre-stop", "echo hook >> "+hooklog,
		"sh", "-c", `trap 'echo child-stopped; exit 0' TERM; while :; do sleep 0.1; done`)
	if err != nil {
		return err
	}
	samples, exited := r.watch(*duration+time.Minute, time.Minute/4)
	if !exited {
		_ = r.cmd.Process.Kill()
		return errors.New("spotinit did not stop after the valid notice")
	}
	err = <-r.done
	lines := r.log()
	var problems []string
	if err != nil {
		problems = append(problems, fmt.Sprintf("spotinit exited with %v", err))
	}
	// The child was stopped by the notice, not before: no stop before t.
	for _, l := range lines {
		if strings.Contains(l.text, "stop sequence started") && l.at < t {
			problems = append(problems, fmt.Sprintf("stop started at %v, before the valid notice at %v", l.at, t))
		}
	}
	if b, _ := os.ReadFile(hooklog); strings.Count(string(b), "hook") != 1 {
		problems = append(problems, fmt.Sprintf("hooks ran %d times, want 1", strings.Count(string(b), "hook")))
	}
	// Warnings rate-limited: a bounded number per minute.
	perMinute := map[int]int{}
	for _, l := range lines {
		if strings.Contains(l.text, "level=WARN") {
			perMinute[int(l.at/time.Minute)]++
		}
	}
	worst := 0
	for _, n := range perMinute {
		worst = max(worst, n)
	}
	fmt.Printf("imds-faults: %d log lines, at most %d warnings in a minute\n", len(lines), worst)
	if worst > 15 {
		problems = append(problems, fmt.Sprintf("%d warnings in one minute", worst))
	}
	if err := flat(samples); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		for _, l := range lines {
			fmt.Println("  |", l.text)
		}
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// shift moves a scenario's times d earlier, dropping what is over.
func shift(sc simulator.Scenario, d time.Duration) simulator.Scenario {
	out := sc
	out.Faults = nil
	for _, f := range sc.Faults {
		if f.Until != 0 && f.Until <= d {
			continue
		}
		f.From = max(f.From-d, 0)
		if f.Until != 0 {
			f.Until -= d
		}
		out.Faults = append(out.Faults, f)
	}
	if sc.Spot != nil {
		s := *sc.Spot
		s.After = max(s.After-d, 0)
		out.Spot = &s
	}
	return out
}

// soak runs spotinit polling a healthy fake IMDS for the duration and
// reports its resources at the start and the end: all must be flat.
func soak(args []string) error {
	fs := flag.NewFlagSet("soak", flag.ExitOnError)
	duration := fs.Duration("duration", 30*time.Minute, "how long to soak")
	interval := fs.Duration("poll", 2*time.Second, "spotinit's poll interval")
	bin := fs.String("spotinit", "", "spotinit binary (default: build it)")
	_ = fs.Parse(args)
	sp, err := buildSpotinit(*bin)
	if err != nil {
		return err
	}
	srv, err := simulator.Start(context.Background(), "127.0.0.1:0", simulator.Scenario{}, nil)
	if err != nil {
		return err
	}
	defer srv.Close()
	r, err := startSpotinit(sp, "--imds", "on", "--imds-endpoint", srv.URL(), "--imds-poll-interval", interval.String(),
		"--notices", "spot,asg,rebalance,scheduled", "sleep", "infinity")
	if err != nil {
		return err
	}
	fmt.Printf("soak: %v, polling every %v\n", *duration, *interval)
	samples, exited := r.watch(*duration, max(*duration/20, time.Second))
	if exited {
		return fmt.Errorf("spotinit exited during the soak: %v", <-r.done)
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	<-r.done
	first, last := samples[0], samples[len(samples)-1]
	fmt.Printf("soak: start %v\nsoak: end   %v\n", first, last)
	st := srv.Stats()
	fmt.Printf("soak: %d IMDS requests, %d token requests\n", st.Requests, st.TokenPUTs)
	if cpu := last.cpu - samples[1].cpu; float64(cpu) > 0.02*float64(last.at-samples[1].at) {
		return fmt.Errorf("CPU %v over %v: more than 2%% of a core", cpu, last.at-samples[1].at)
	}
	return flat(samples)
}

// fuzz runs every fuzz target in the module for fuzztime each.
func fuzz(args []string) error {
	fs := flag.NewFlagSet("fuzz", flag.ExitOnError)
	fuzztime := fs.Duration("fuzztime", time.Minute, "time per target")
	_ = fs.Parse(args)
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "./...").Output()
	if err != nil {
		return fmt.Errorf("go list: %v", err)
	}
	re := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	type target struct{ dir, name string }
	var targets []target
	for _, dir := range strings.Fields(string(out)) {
		files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			for _, m := range re.FindAllSubmatch(b, -1) {
				targets = append(targets, target{dir, string(m[1])})
			}
		}
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].dir+targets[i].name < targets[j].dir+targets[j].name })
	var failed []string
	for _, tg := range targets {
		corpus := filepath.Join(tg.dir, "testdata", "fuzz", tg.name)
		before := entries(corpus)
		cmd := exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+tg.name+"$", "-fuzztime", fuzztime.String(), "-parallel", "2", ".")
		cmd.Dir = tg.dir
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		status := "ok"
		switch {
		case err != nil && deadlineRace(buf.String()) && entries(corpus) == before:
			// Go's fuzzing coordinator can report its own -fuzztime
			// deadline as a failure (golang/go#75804, fixed in Go 1.27):
			// a bare "context deadline exceeded" at the end of the time,
			// with no crasher written. Anything the target found is
			// written to the corpus, so that tells the two apart.
			status = "ok (the toolchain's deadline report, golang/go#75804; no crasher)"
		case err != nil:
			status = "FAIL"
			failed = append(failed, tg.name)
			fmt.Print(buf.String())
		}
		fmt.Printf("fuzz %-28s %-40s %s\n", tg.name, strings.TrimPrefix(tg.dir, mustWd()), status)
	}
	if len(targets) == 0 {
		return errors.New("no fuzz targets found")
	}
	if len(failed) > 0 {
		return fmt.Errorf("fuzz targets failed: %s (crashers are in testdata/fuzz: keep them as regression seeds)", strings.Join(failed, ", "))
	}
	return nil
}

// entries counts the files in dir (0 when it does not exist).
func entries(dir string) int {
	es, _ := os.ReadDir(dir)
	return len(es)
}

// deadlineRace reports whether a failed fuzzing run's output is the fuzzing
// coordinator's bare deadline error and nothing else went wrong: no panic,
// no failing input.
func deadlineRace(out string) bool {
	return strings.Contains(out, "\n    context deadline exceeded\n") &&
		!strings.Contains(out, "Failing input written to") && !strings.Contains(out, "panic:")
}

func mustWd() string {
	wd, _ := os.Getwd()
	return wd
}
