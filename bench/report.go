package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// row is one line of the table: a figure in one mode, a cell per init, and
// for spotinit the goal from issue 5 and whether it was met.
type row struct {
	order  int
	figure string
	cells  map[string]string
	goal   string
	result string // PASS, MISS, or "" when there is no goal or no figure
	load   string // the 1-minute load average over the figure's phase
}

type report struct {
	mu       sync.Mutex
	rows     []row
	notes    []string
	began    time.Time
	loadFrom float64
}

func newReport(*bench) *report {
	return &report{began: time.Now(), loadFrom: loadavg()}
}

func (r *report) add(w row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, w)
}

func (r *report) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// phase records the load average over one figure's measurement.
type phase struct{ from float64 }

func startPhase() phase { return phase{loadavg()} }

func (p phase) load() string { return fmt.Sprintf("%.1f→%.1f", p.from, loadavg()) }

// verdict is PASS or MISS.
func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "**MISS**"
}

// Row order: figures appear in the order of allFigures, then by their own
// sequence number.
func rowOrder(figure string, seq int) int {
	return slices.Index(allFigures, figure)*100 + seq
}

func (r *report) write(w io.Writer, b *bench) {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.SortStableFunc(r.rows, func(x, y row) int { return x.order - y.order })
	var names []string
	for _, s := range b.inits {
		names = append(names, s.name)
	}
	fmt.Fprintf(w, "| figure | %s | goal (spotinit, PID 1) | spotinit vs goal | load (1 min) |\n", strings.Join(names, " | "))
	fmt.Fprintf(w, "|---|%s---|---|---|\n", strings.Repeat("---|", len(names)))
	for _, x := range r.rows {
		var cells []string
		for _, s := range b.inits {
			c := x.cells[s.name]
			switch {
			case !s.ok():
				c = "n/a (" + s.missing + ")"
			case c == "":
				c = "n/a"
			}
			cells = append(cells, c)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", x.figure, strings.Join(cells, " | "), x.goal, x.result, x.load)
	}
	fmt.Fprintln(w)
	if len(r.notes) > 0 {
		for _, n := range r.notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
		fmt.Fprintln(w)
	}
	r.machine(w, b)
}

// machine writes what the run ran on.
func (r *report) machine(w io.Writer, b *bench) {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	cpu := "?"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "?"
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(data), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	fmt.Fprintf(w, "Machine: %s, %d CPUs, %s RAM; kernel %s; load average %.2f at the start, %.2f at the end (1 min); %s UTC, %s.\n",
		cpu, runtime.NumCPU(), mem, unix.ByteSliceToString(uts.Release[:]), r.loadFrom, loadavg(),
		r.began.UTC().Format("2006-01-02 15:04"), time.Since(r.began).Round(time.Second))
	fmt.Fprintf(w, "Bench built with %s; children: %s.\n", runtime.Version(), b.h.kind)
	var vs []string
	for _, s := range b.inits {
		if s.ok() {
			vs = append(vs, fmt.Sprintf("%s %s (%s)", s.name, s.version, s.path))
		} else {
			vs = append(vs, s.name+" n/a ("+s.missing+")")
		}
	}
	fmt.Fprintf(w, "Inits: %s.\n", strings.Join(vs, "; "))
	if len(b.cfg.spotEnv) > 0 {
		fmt.Fprintf(w, "spotinit ran with the extra environment %s.\n", strings.Join(b.cfg.spotEnv, " "))
	}
	fmt.Fprintf(w, "Command: `go run ./bench %s`\n", strings.Join(quoteArgs(b.cfg.args), " "))
}

func quoteArgs(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.ContainsAny(a, " \t'\"$") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return out
}

// Statistics.

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}

func median(xs []float64) float64 { return quantile(xs, 0.5) }

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var t float64
	for _, x := range xs {
		t += x
	}
	return t / float64(len(xs))
}

// Formatting.

// fmtNs formats nanoseconds with a unit that keeps three significant digits.
func fmtNs(ns float64) string {
	a := math.Abs(ns)
	switch {
	case math.IsNaN(ns):
		return "?"
	case a < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case a < 1e4:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case a < 1e6:
		return fmt.Sprintf("%.0f µs", ns/1e3)
	case a < 1e9:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	default:
		return fmt.Sprintf("%.2f s", ns/1e9)
	}
}

// fmtSigned is fmtNs with an explicit sign.
func fmtSigned(ns float64) string {
	if ns >= 0 {
		return "+" + fmtNs(ns)
	}
	return "−" + fmtNs(-ns)
}

// fmtDiff formats the median of differences with its interquartile range.
func fmtDiff(d []float64) string {
	return fmt.Sprintf("%s (IQR %s…%s, n=%d)", fmtSigned(median(d)), fmtSigned(quantile(d, 0.25)), fmtSigned(quantile(d, 0.75)), len(d))
}

func fmtMiB(kb float64) string { return fmt.Sprintf("%.2f MiB", kb/1024) }

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
}
