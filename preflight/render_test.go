package preflight

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spotinit/spotinit/hooks"
	"github.com/spotinit/spotinit/interruption"
)

func TestWriteText(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t, map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
	cfg.IMDS, cfg.Endpoint = interruption.On, fakeIMDS(t, "spot=0s")
	cfg.StopTimeout = 45e9
	cfg.PreStop = []hooks.Hook{{Name: "pre-stop[1]", Path: "/nonexistent/sh", Argv: []string{"sh", "-c", "sleep 1"}}}
	cfg.Argv = []string{"sh", "-c", "exit 0"}
	r := Run(context.Background(), cfg)
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"role      subreaper (pid 4242): PR_SET_CHILD_SUBREAPER works",
		"platform  Kubernetes (KUBERNETES_SERVICE_HOST): kubelet sends SIGKILL terminationGracePeriodSeconds after SIGTERM",
		"timing    --stop-timeout 45s, --kill-margin 2s: spotinit's own SIGKILL 43s after the stop signal",
		"imds      on, " + cfg.Endpoint + ", notices spot-interruption,asg-terminate (spot every 2s)",
		"  token (PUT)                          200 ",
		"  spot/instance-action                 200 ",
		"  instance-id                          200 ",
		`hooks     pre-stop[1] "sleep 1": /nonexistent/sh: missing`,
		"command   sh: /usr/bin/sh: ",
		"warning: timing: --stop-timeout 45s is longer than Kubernetes's default stop timeout, 30s",
		"; fix: set terminationGracePeriodSeconds: 45 in the pod spec; or set --stop-timeout 30s\n",
		`problem: hooks: --pre-stop "sleep 1" runs with /nonexistent/sh, and /nonexistent/sh is missing in this image: it will fail; fix: `,
		"warning: imds: a Spot interruption notice is active",
		"\nnot ready: 1 problem, 2 warnings: a graceful stop is not assured here\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	// One screen: every finding on one line, and no line without a label
	// or an indent but the findings and the verdict.
	if n := strings.Count(out, "\n"); n > 30 {
		t.Errorf("%d lines", n)
	}
	for _, f := range r.Findings {
		if strings.ContainsAny(f.Message+f.Fix, "\n") {
			t.Errorf("finding on more than one line: %+v", f)
		}
	}
}

func TestWriteTextOK(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t, nil)
	r := Run(context.Background(), cfg)
	var b strings.Builder
	r.WriteText(&b)
	if !strings.HasSuffix(b.String(), "\n\nok: everything a graceful stop needs is in place (0 warnings)\n") ||
		!strings.Contains(b.String(), "\nhooks     none configured\n") ||
		!strings.Contains(b.String(), "\ncommand   command: none given: not checked") {
		t.Errorf("output:\n%s", b.String())
	}
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t, map[string]string{"AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"})
	cfg.IMDS = interruption.Auto
	cfg.StopTimeout = 150e9
	r := Run(context.Background(), cfg)
	var b strings.Builder
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), "\n") != 1 {
		t.Errorf("want one line, got:\n%s", b.String())
	}
	var doc struct {
		Version  int  `json:"version"`
		OK       bool `json:"ok"`
		Problems int  `json:"problems"`
		Warnings int  `json:"warnings"`
		Role     struct {
			PID  int    `json:"pid"`
			Role string `json:"role"`
		} `json:"role"`
		Platform struct {
			Name     string   `json:"name"`
			Evidence []string `json:"evidence"`
			Default  float64  `json:"default_stop_timeout"`
			Max      float64  `json:"max_stop_timeout"`
		} `json:"platform"`
		Timing struct {
			Stop, Margin, After string
		} `json:"timing"`
		IMDS struct {
			Mode     string   `json:"mode"`
			Kinds    []string `json:"kinds"`
			Probed   bool     `json:"probed"`
			Decision string   `json:"decision"`
		} `json:"imds"`
		Hooks    []any      `json:"hooks"`
		Command  ExecReport `json:"command"`
		Findings []Finding  `json:"findings"`
	}
	if err := json.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != JSONVersion || doc.OK || doc.Problems != 1 || doc.Warnings != 0 ||
		doc.Role.PID != 4242 || doc.Role.Role != "subreaper" ||
		doc.Platform.Name != "fargate" || doc.Platform.Default != 30 || doc.Platform.Max != 120 ||
		doc.IMDS.Mode != "auto" || doc.IMDS.Probed || !strings.Contains(doc.IMDS.Decision, "Fargate") ||
		doc.Hooks == nil || len(doc.Findings) != 1 || doc.Findings[0].Severity != Problem || doc.Findings[0].Area != "timing" {
		t.Errorf("document %+v\n%s", doc, b.String())
	}
	var raw map[string]map[string]any
	json.Unmarshal([]byte(b.String()), &raw)
	// Durations are seconds, as in the logs and the stop report.
	if raw["timing"]["stop_timeout"] != 150.0 || raw["timing"]["kill_after"] != 148.0 {
		t.Errorf("timing %v", raw["timing"])
	}
}
