package supervisor

import (
	"strings"
	"syscall"
	"testing"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
		err  string
	}{
		{"TERM", syscall.SIGTERM, ""},
		{"SIGTERM", syscall.SIGTERM, ""},
		{"sigterm", syscall.SIGTERM, ""},
		{"term", syscall.SIGTERM, ""},
		{" USR1 ", syscall.SIGUSR1, ""},
		{"15", syscall.SIGTERM, ""},
		{"64", syscall.Signal(64), ""},
		{"0", 0, "out of range"},
		{"65", 0, "out of range"},
		{"-1", 0, "out of range"},
		{"", 0, "empty"},
		{"BOGUS", 0, `unknown signal "BOGUS"`},
		{"SIG", 0, "unknown signal"},
	} {
		got, err := ParseSignal(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSignal(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseRewrite(t *testing.T) {
	for _, tc := range []struct {
		in       string
		from, to syscall.Signal
		err      string
	}{
		{"TERM:QUIT", syscall.SIGTERM, syscall.SIGQUIT, ""},
		{"SIGTERM:SIGQUIT", syscall.SIGTERM, syscall.SIGQUIT, ""},
		{"15:3", syscall.SIGTERM, syscall.SIGQUIT, ""},
		{"USR1:0", syscall.SIGUSR1, 0, ""},
		{"TERM", 0, 0, "want FROM:TO"},
		{"TERM:", 0, 0, "empty"},
		{":QUIT", 0, 0, "empty"},
		{"TERM:NOPE", 0, 0, `unknown signal "NOPE"`},
		{"0:TERM", 0, 0, "out of range"},
	} {
		from, to, err := ParseRewrite(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRewrite(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || from != tc.from || to != tc.to {
			t.Errorf("ParseRewrite(%q) = %v, %v, %v; want %v, %v", tc.in, from, to, err, tc.from, tc.to)
		}
	}
}

func FuzzParseRewrite(f *testing.F) {
	for _, s := range []string{"TERM:QUIT", "15:0", "SIGUSR1:USR2", ":", "a:b:c", "RTMIN:1", "9999999999999999999:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		from, to, err := ParseRewrite(s)
		if err != nil {
			return
		}
		if from < 1 || from > 64 || to < 0 || to > 64 {
			t.Fatalf("ParseRewrite(%q) = %d:%d out of range", s, from, to)
		}
	})
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	if p, err := lookPath("sh", []string{"PATH=/nonexistent:/bin"}); err != nil || p != "/bin/sh" {
		t.Errorf("lookPath(sh) = %q, %v", p, err)
	}
	if _, err := lookPath("sh", []string{"PATH=" + dir}); err == nil {
		t.Error("found sh in an empty PATH directory")
	}
	// No PATH at all: the usual default path, as a shell does.
	if p, err := lookPath("sh", []string{"HOME=/"}); err != nil || p != "/bin/sh" && p != "/usr/bin/sh" {
		t.Errorf("lookPath(sh) without PATH = %q, %v", p, err)
	}
	if p, _ := lookPath("./x", nil); p != "./x" {
		t.Errorf("a name with a slash is used as it is, got %q", p)
	}
}
