package preflight

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// JSONVersion is the version of the JSON document WriteJSON writes; it
// changes only when a field changes meaning or goes away.
const JSONVersion = 1

// WriteText writes the report as one screen of text: what was found,
// section by section, then every problem and warning on one line with its
// fix, then the verdict.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-9s %s\n", label, fmt.Sprintf(format, args...))
	}
	pad := strings.Repeat(" ", 10)

	role := fmt.Sprintf("%s (pid %d)", r.Role.Role, r.Role.PID)
	if r.Role.PID == 1 {
		role = "PID 1"
	}
	line("role", "%s: %s", role, r.Role.Detail)

	p := r.Platform
	title := p.Title()
	if len(p.Evidence) > 0 {
		title += " (" + strings.Join(p.Evidence, ", ") + ")"
	}
	line("platform", "%s: %s", title, p.Rule)

	t := r.Timing
	line("timing", "--stop-timeout %s, --kill-margin %s: spotinit's own SIGKILL %s after the stop signal", t.StopTimeout, t.KillMargin, t.KillAfter)

	m := r.IMDS
	head := m.Mode
	if m.Endpoint != "" {
		head += ", " + m.Endpoint
	}
	if m.Probed && len(m.Kinds) > 0 {
		head += ", notices " + strings.Join(m.Kinds, ",")
		if m.PollInterval > 0 {
			head += fmt.Sprintf(" (spot every %s)", m.PollInterval)
		}
	}
	line("imds", "%s", head)
	b.WriteString(pad + m.Decision + "\n")
	if m.Token != nil {
		probeLine(&b, "token (PUT)", m.Token, "")
		for i := range m.Paths {
			probeLine(&b, m.Paths[i].Path, &m.Paths[i].Probe, m.Paths[i].Meaning)
		}
	}

	if len(r.Hooks) == 0 {
		line("hooks", "none configured")
	}
	for i, h := range r.Hooks {
		label := ""
		if i == 0 {
			label = "hooks"
		}
		line(label, "%s", execLine(h))
	}
	line("command", "%s", execLine(r.Command))

	if len(r.Findings) > 0 {
		b.WriteString("\n")
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%s: %s: %s", f.Severity, f.Area, f.Message)
		if f.Fix != "" {
			fmt.Fprintf(&b, "; fix: %s", f.Fix)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n" + r.verdict() + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func probeLine(b *strings.Builder, name string, p *Probe, meaning string) {
	status := "---"
	if p.Status != 0 {
		status = fmt.Sprint(p.Status)
	}
	if p.Error != "" {
		meaning = p.Error
	}
	fmt.Fprintf(b, "  %-36s %s %9s  %s\n", name, status, p.RTT, meaning)
}

func execLine(e ExecReport) string {
	s := e.Kind
	switch {
	case e.Kind == "pre-stop-dir" || e.Kind == "notice-file" || e.Kind == "report-file":
		s += " " + e.Name
	case e.Command != "":
		s = fmt.Sprintf("%s %q", e.Name, e.Command)
	case e.Name != "":
		s = e.Name
	}
	if e.Path != "" && e.Path != e.Name && e.Kind != "notice-file" && e.Kind != "report-file" {
		s += ": " + e.Path
	}
	return s + ": " + e.Detail
}

// verdict is the last line: whether a graceful stop is in place.
func (r *Report) verdict() string {
	probs, warns := r.count(Problem), r.count(Warning)
	if probs == 0 {
		return fmt.Sprintf("ok: everything a graceful stop needs is in place (%s)", plural(warns, "warning"))
	}
	return fmt.Sprintf("not ready: %s, %s: a graceful stop is not assured here", plural(probs, "problem"), plural(warns, "warning"))
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// WriteJSON writes the report as one JSON document (with a final newline):
// the Report's fields, plus "version" (JSONVersion), "ok" (OK), and the
// number of problems and warnings. Durations are strings as Go writes
// them ("30s", "1.2ms").
func (r *Report) WriteJSON(w io.Writer) error {
	rc := *r // a copy: writing never changes the report
	if rc.Findings == nil {
		rc.Findings = []Finding{}
	}
	if rc.Hooks == nil {
		rc.Hooks = []ExecReport{}
	}
	if rc.Platform.Evidence == nil {
		rc.Platform.Evidence = []string{}
	}
	doc := struct {
		Version  int  `json:"version"`
		OK       bool `json:"ok"`
		Problems int  `json:"problems"`
		Warnings int  `json:"warnings"`
		*Report
	}{JSONVersion, r.OK(), r.count(Problem), r.count(Warning), &rc}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}
