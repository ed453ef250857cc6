package main

import (
	"bytes"
	"context"
	"log/slog"
	"time"

	"github.com/spotinit/spotinit/internal/atomicfile"
	"github.com/spotinit/spotinit/supervisor"
)

// reportSchema is the version of the stop report's schema
// (docs/stop-report.schema.json): a field that changes meaning or goes
// away takes a new version; a new optional field does not.
const reportSchema = 1

// hookJSON is one hook in the stop report's hooks list.
type hookJSON struct {
	Name     string  `json:"name"`
	Kind     string  `json:"kind"`
	Status   string  `json:"status"`
	Duration seconds `json:"duration"`
	Killed   bool    `json:"killed"`
}

// reportAttrs renders the stop report's data as its attributes, in the order
// of docs/stop-report.md. code is spotinit's own exit status.
func reportAttrs(r supervisor.Report, code int) []slog.Attr {
	as := []slog.Attr{
		slog.Int("schema", reportSchema),
		slog.String("version", thisBuild().version),
		slog.String("trigger", r.Trigger),
	}
	if r.Action != "" {
		as = append(as, slog.String("action", r.Action))
	}
	if r.Lead != nil {
		as = append(as, slog.Duration("lead", *r.Lead))
	}
	if !r.Deadline.IsZero() {
		as = append(as, slog.Time("deadline", r.Deadline))
	}
	hs := make([]hookJSON, 0, len(r.Hooks))
	failed, killedHooks, took := 0, 0, time.Duration(0)
	for _, h := range r.Hooks {
		hs = append(hs, hookJSON{Name: h.Name, Kind: h.Kind, Status: h.Status, Duration: seconds(h.Duration), Killed: h.Killed})
		if h.Status != "ok" {
			failed++
		}
		if h.Killed {
			killedHooks++
		}
		took += h.Duration
	}
	as = append(as, slog.Any("hooks", hs), slog.Int("hooks_failed", failed), slog.Duration("hooks_duration", took))
	if r.ChildExited {
		as = append(as, slog.Int("child_code", r.ChildCode))
		if r.ChildSignal != 0 {
			as = append(as, slog.String("child_signal", supervisor.SignalName(r.ChildSignal)))
		}
	}
	as = append(as, slog.Int("code", code),
		slog.Bool("killed", r.Killed()),
		slog.Bool("killed_child", r.KilledChild),
		slog.Int("killed_descendants", r.KilledDescendants),
		slog.Int("killed_hooks", killedHooks))
	if r.Left != nil {
		as = append(as, slog.Duration("left", *r.Left))
	}
	as = append(as, slog.Duration("stop_timeout", r.StopTimeout), slog.Duration("kill_margin", r.KillMargin))
	if r.ForwardDelay > 0 {
		as = append(as, slog.Duration("forward_delay", r.ForwardDelay))
	}
	return as
}

// stopReport writes the stop report, the last record spotinit writes: to
// the report file (path, unless empty) as one JSON document, and on stderr
// at every level but error. Its caller has stopped every other source of
// records first. A report file that cannot be written is logged before the
// report, never after.
func stopReport(l logs, path string, r supervisor.Report, code int) {
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, "stop report", 0)
	rec.AddAttrs(reportAttrs(r, code)...)
	if path != "" {
		var b bytes.Buffer
		err := newHandler(&b, true).Handle(context.Background(), rec)
		if err == nil {
			err = atomicfile.Write(path, "spotinit-report", b.Bytes())
		}
		if err != nil {
			l.Warn("cannot write report file", "path", path, "err", err)
		}
	}
	if l.level < slog.LevelError {
		_ = l.all.Handle(context.Background(), rec)
	}
}
