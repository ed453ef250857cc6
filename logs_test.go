package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spotinit/spotinit/internal/logcheck"
	"github.com/spotinit/spotinit/supervisor"
)

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                            "0.000",
		time.Millisecond:             "0.001",
		1499 * time.Microsecond:      "0.001",
		1500 * time.Microsecond:      "0.002",
		117939 * time.Millisecond:    "117.939",
		2 * time.Minute:              "120.000",
		-320 * time.Millisecond:      "-0.320",
		30 * 24 * time.Hour:          "2592000.000", // never 2.592e+06
		3999999999 * time.Nanosecond: "4.000",
	} {
		if got := seconds(d).String(); got != want {
			t.Errorf("%v: %s, want %s", d, got, want)
		}
	}
}

// TestLogForm: each kind of value takes its one form, in both formats, and
// every record carries the marker.
func TestLogForm(t *testing.T) {
	at := time.Date(2026, 12, 4, 15, 24, 36, 956789000, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		format string
		want   string
	}{
		{"text", `level=INFO msg=m logger=spotinit at=2026-12-04T14:24:36.956Z lead=117.939 argv="[\"sh\",\"-c\",\"exit 3\"]" n=3 s="a b"` + "\n"},
		{"json", `"level":"INFO","msg":"m","logger":"spotinit","at":"2026-12-04T14:24:36.956Z","lead":117.939,"argv":["sh","-c","exit 3"],"n":3,"s":"a b"}` + "\n"},
	} {
		var b bytes.Buffer
		l, err := newLogs(&b, tc.format, "info")
		if err != nil {
			t.Fatal(err)
		}
		l.Info("m", "at", at, "lead", 117939*time.Millisecond, "argv", []string{"sh", "-c", "exit 3"}, "n", 3, "s", "a b")
		got := b.String()
		if !strings.HasSuffix(got, tc.want) {
			t.Errorf("%s:\n got %s\nwant …%s", tc.format, got, tc.want)
		}
		if res := logcheck.Check(nil, got); res.Records != 1 || len(res.Problems) > 0 {
			t.Errorf("%s: %+v", tc.format, res)
		}
	}
}

// TestLevels: --log-level filters every record but the stop report, which
// only error hides; hook output is an INFO record in both formats.
func TestLevels(t *testing.T) {
	rep := supervisor.Report{Trigger: "child-exit", ChildExited: true, StopTimeout: 30 * time.Second, KillMargin: 2 * time.Second}
	for _, format := range []string{"text", "json"} {
		for level, want := range map[string][]string{
			"debug": {"debug line", "hook output", "stop report"},
			"info":  {"hook output", "stop report"},
			"warn":  {"warn line", "stop report"},
			"error": {"error line"},
		} {
			var b bytes.Buffer
			l, err := newLogs(&b, format, level)
			if err != nil {
				t.Fatal(err)
			}
			l.Debug("debug line")
			_, _ = hookLog{l.Logger}.Write([]byte("hook pre-stop[1]: said\n"))
			l.Warn("warn line")
			l.Error("error line")
			stopReport(l, "", rep, 0)
			out := b.String()
			for _, msg := range []string{"debug line", "hook output", "warn line", "error line", "stop report"} {
				has := strings.Contains(out, msg)
				wanted := msg == "warn line" && level != "error" || msg == "error line" || contains(want, msg)
				if has != wanted {
					t.Errorf("%s at %s: %q printed %v, want %v:\n%s", format, level, msg, has, wanted, out)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestReportLossless: a report in text parses back into the same document
// as the JSON one, and both validate.
func TestReportLossless(t *testing.T) {
	lead, left := 117939*time.Millisecond, 7398*time.Millisecond
	rep := supervisor.Report{
		Trigger: "spot-interruption", Action: "terminate", Lead: &lead,
		Deadline: time.Date(2026, 12, 4, 14, 26, 32, 0, time.UTC),
		Hooks: []supervisor.HookReport{
			{Name: "pre-stop[1]", Kind: "pre-stop", Status: "ok", Duration: 303 * time.Millisecond},
			{Name: `odd "name", with = signs`, Kind: "pre-stop", Status: "timeout", Duration: 5 * time.Second, Killed: true},
		},
		ChildExited: true, ChildCode: 143, ChildSignal: syscall.SIGTERM,
		KilledDescendants: 2, Left: &left,
		StopTimeout: 30 * time.Second, KillMargin: 2 * time.Second, ForwardDelay: 5 * time.Second,
	}
	s := loadSchema(t)
	docs := map[string]string{}
	for _, format := range []string{"text", "json"} {
		var b bytes.Buffer
		l, err := newLogs(&b, format, "warn")
		if err != nil {
			t.Fatal(err)
		}
		stopReport(l, "", rep, 0)
		res := checkLogs(t, b.String())
		if res.Reports != 1 {
			t.Fatalf("%s: %d reports in %s", format, res.Reports, b.String())
		}
		rec, _, _ := logcheck.Parse(strings.TrimSuffix(b.String(), "\n"))
		doc, err := rec.Document(s)
		if err != nil {
			t.Fatal(err)
		}
		delete(doc, "time") // two reports, written a moment apart
		j, _ := json.Marshal(doc)
		docs[format] = string(j)
	}
	if docs["text"] != docs["json"] {
		t.Errorf("text and JSON reports differ:\n%s\n%s", docs["text"], docs["json"])
	}
	for _, want := range []string{`"code":0`, `"child_code":143`, `"child_signal":"SIGTERM"`, `"killed":true`, `"killed_hooks":1`, `"hooks_failed":1`, `"hooks_duration":5.303`, `"forward_delay":5.000`} {
		if !strings.Contains(docs["json"], want) {
			t.Errorf("no %s in %s", want, docs["json"])
		}
	}
}

// TestReportAttrsOptional: the optional fields are left out when they do
// not apply.
func TestReportAttrsOptional(t *testing.T) {
	var keys []string
	for _, a := range reportAttrs(supervisor.Report{Trigger: "child-exit", StopTimeout: time.Second}, 3) {
		keys = append(keys, a.Key)
		if a.Value.Kind() == slog.KindAny && a.Key != "hooks" {
			t.Errorf("%s is %T", a.Key, a.Value.Any())
		}
	}
	if got := strings.Join(keys, " "); got != "schema version trigger hooks hooks_failed hooks_duration code killed killed_child killed_descendants killed_hooks stop_timeout kill_margin" {
		t.Errorf("keys %s", got)
	}
}
