package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The children the inits run. Each is compiled from cSource at bench time
// (one static binary, linked under each name) so that the child's own cost
// stays out of the figures; without gcc the bench binary itself serves the
// simple ones (a Go child, about a millisecond to start: the same in the
// baseline and under the init, so differences still hold, only noisier) and
// the orphan maker is not available.
const (
	hStamp     = "sb-stamp"     // prints CLOCK_MONOTONIC (ns) on stdout as its first act, exits 0
	hSigwait   = "sb-sigwait"   // blocks SIGTERM, prints "R", waits for it, prints its arrival time, exits 0
	hSleeper   = "sb-sleeper"   // prints "R", sleeps until a signal kills it
	hIgnterm   = "sb-ignterm"   // ignores SIGTERM, prints "R", sleeps until SIGKILL
	hOrphans   = "sb-orphans"   // sb-orphans N FIFO [SPREAD_US]: leaves N orphans blocked on FIFO, prints "R<count>", sleeps
	hHookStamp = "sb-hookstamp" // writes CLOCK_MONOTONIC (ns) to $BENCH_STAMP, exits 0
)

var helperNames = []string{hStamp, hSigwait, hSleeper, hIgnterm, hOrphans, hHookStamp}

const cSource = `#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long mono(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void put(int fd, const char *prefix, long long v) {
	char buf[64];
	int n = snprintf(buf, sizeof buf, "%s%lld\n", prefix, v);
	if (write(fd, buf, n) < 0) _exit(1);
}

static void ready(void) {
	if (write(1, "R\n", 2) < 0) _exit(1);
}

/* orphans: a grandchild per orphan, so that the init's direct child (this
 * process) stays alive while the orphans are reparented to the init. Each
 * orphan opens FIFO for reading (the bench holds it open read-write, so that
 * does not block), says it is ready, and blocks in read() until the bench
 * closes its end: then all see EOF at once and exit, orphan i after
 * sleeping i*spread/n microseconds (so with spread > 0 the exits come
 * evenly over that time instead of at once). */
static int orphans(int n, const char *fifo, long long spread) {
	int rp[2];
	if (pipe(rp) < 0) return 1;
	pid_t mid = fork();
	if (mid < 0) return 1;
	if (mid == 0) {
		close(rp[0]);
		for (int i = 0; i < n; i++) {
			pid_t c = fork();
			if (c < 0) break; /* the count tells the bench */
			if (c == 0) {
				int fd = open(fifo, O_RDONLY);
				if (fd < 0) _exit(1);
				char b = 1;
				if (write(rp[1], &b, 1) < 0) _exit(1);
				close(rp[1]);
				close(1);
				char x;
				while (read(fd, &x, 1) > 0 || errno == EINTR) errno = 0;
				if (spread > 0) {
					long long us = spread * i / n;
					struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
					while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
				}
				_exit(0);
			}
		}
		_exit(0);
	}
	close(rp[1]);
	waitpid(mid, NULL, 0);
	long long count = 0;
	char buf[4096];
	for (;;) {
		ssize_t r = read(rp[0], buf, sizeof buf);
		if (r > 0) count += r;
		else if (r == 0 || errno != EINTR) break;
	}
	put(1, "R", count);
	for (;;) pause();
}

int main(int argc, char **argv) {
	const char *name = strrchr(argv[0], '/');
	name = name ? name + 1 : argv[0];
	if (!strcmp(name, "sb-stamp")) {
		long long t = mono();
		put(1, "", t);
		_exit(0);
	}
	if (!strcmp(name, "sb-sigwait")) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_BLOCK, &set, NULL);
		ready();
		for (;;) {
			int s = sigwaitinfo(&set, NULL);
			if (s == SIGTERM) break;
		}
		long long t = mono();
		put(1, "", t);
		_exit(0);
	}
	if (!strcmp(name, "sb-sleeper")) {
		ready();
		for (;;) pause();
	}
	if (!strcmp(name, "sb-ignterm")) {
		signal(SIGTERM, SIG_IGN);
		ready();
		for (;;) pause();
	}
	if (!strcmp(name, "sb-orphans") && (argc == 3 || argc == 4)) {
		return orphans(atoi(argv[1]), argv[2], argc == 4 ? atoll(argv[3]) : 0);
	}
	if (!strcmp(name, "sb-hookstamp")) {
		long long t = mono();
		const char *p = getenv("BENCH_STAMP");
		if (!p) _exit(2);
		char tmp[4096];
		snprintf(tmp, sizeof tmp, "%s.tmp", p);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) _exit(1);
		put(fd, "", t);
		close(fd);
		rename(tmp, p);
		_exit(0);
	}
	fprintf(stderr, "%s: unknown helper\n", name);
	return 2;
}
`

// helpers are the built children: name → path.
type helpers struct {
	dir     string
	paths   map[string]string
	kind    string // how they were built, for the report
	orphans bool   // whether the orphan maker exists
}

func (h *helpers) path(name string) string { return h.paths[name] }

// buildHelpers compiles cSource into dir (statically when libc.a is there)
// and links it under every helper name; without gcc it links the bench
// binary itself under the names of the helpers it can play.
func buildHelpers(dir string) (*helpers, error) {
	h := &helpers{dir: dir, paths: map[string]string{}}
	src := filepath.Join(dir, "helpers.c")
	bin := filepath.Join(dir, "sb-helper")
	if err := os.WriteFile(src, []byte(cSource), 0o644); err != nil {
		return nil, err
	}
	if gcc, err := exec.LookPath("gcc"); err == nil {
		out, err := exec.Command(gcc, "-O2", "-static", "-o", bin, src).CombinedOutput()
		h.kind = "C, gcc -O2 -static"
		if err != nil {
			out, err = exec.Command(gcc, "-O2", "-o", bin, src).CombinedOutput()
			h.kind = "C, gcc -O2 (dynamic: no static libc)"
		}
		if err != nil {
			return nil, fmt.Errorf("gcc: %v: %s", err, out)
		}
		for _, n := range helperNames {
			p := filepath.Join(dir, n)
			if err := os.Link(bin, p); err != nil {
				return nil, err
			}
			h.paths[n] = p
		}
		h.orphans = true
		return h, nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	h.kind = "Go (no gcc found: the bench binary plays the children; no orphan maker)"
	for _, n := range helperNames {
		if n == hOrphans {
			continue
		}
		p := filepath.Join(dir, n)
		if err := os.Symlink(self, p); err != nil {
			return nil, err
		}
		h.paths[n] = p
	}
	return h, nil
}

// isHelper reports whether argv0 names a helper: the bench binary run as one
// of the Go fallbacks.
func isHelper(argv0 string) bool {
	return strings.HasPrefix(filepath.Base(argv0), "sb-")
}

// goHelper is the Go fallback of the C helpers (all but the orphan maker).
func goHelper(argv []string) int {
	name := filepath.Base(argv[0])
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	switch name {
	case hStamp:
		fmt.Fprintln(w, mono())
		return 0
	case hSigwait:
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Fprintln(w, "R")
		w.Flush()
		<-c
		fmt.Fprintln(w, mono())
		return 0
	case hSleeper, hIgnterm:
		if name == hIgnterm {
			signal.Ignore(syscall.SIGTERM)
		}
		fmt.Fprintln(w, "R")
		w.Flush()
		for {
			time.Sleep(time.Hour)
		}
	case hHookStamp:
		t := mono()
		p := os.Getenv("BENCH_STAMP")
		if p == "" {
			return 2
		}
		if err := os.WriteFile(p+".tmp", []byte(strconv.FormatInt(t, 10)+"\n"), 0o644); err != nil {
			return 1
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return 1
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "%s: unknown helper\n", name)
	return 2
}

// mono is CLOCK_MONOTONIC in nanoseconds: the clock every helper stamps
// with, shared by all processes (no time namespaces are used).
func mono() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err) // never fails on Linux
	}
	return ts.Nano()
}
