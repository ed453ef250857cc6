package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30s", 30 * time.Second, true},
		{"1m30s", 90 * time.Second, true},
		{"30", 30 * time.Second, true},
		{" 30 ", 30 * time.Second, true},
		{"2.5", 2500 * time.Millisecond, true},
		{"0", 0, true},
		{"500ms", 500 * time.Millisecond, true},
		{"24h", 24 * time.Hour, true},
		{"24h1s", 0, false},
		{"-5s", 0, false},
		{"-5", 0, false},
		{"abc", 0, false},
		{"", 0, false},
		{"1e3", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"0x10", 0, false},
		{"9999999999999999999999", 0, false},
	} {
		got, err := parseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "30", "1m30s", "2.5", "-1", "1e9", "9223372036s", ".5", "5."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err == nil && (d < 0 || d > maxDuration) {
			t.Fatalf("parseDuration(%q) = %v, outside 0..%v", s, d, maxDuration)
		}
	})
}

func TestNonBlank(t *testing.T) {
	got := nonBlank(strings.Split("echo a, b\r\n\n  \necho c\n", "\n"))
	if strings.Join(got, "|") != "echo a, b|echo c" {
		t.Errorf("nonBlank = %q", got)
	}
}

// FuzzEnvList: the newline-separated hook lists from the environment never
// yield a blank command or one with a line break in it.
func FuzzEnvList(f *testing.F) {
	for _, s := range []string{"", "\n", "a\nb", "a\r\nb\r\n", " \n\t\n", "echo 'x\ny'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range nonBlank(strings.Split(s, "\n")) {
			if strings.TrimSpace(v) == "" || strings.ContainsAny(v, "\n") || strings.HasSuffix(v, "\r") {
				t.Fatalf("entry %q from %q", v, s)
			}
		}
	})
}

// FuzzConfigure feeds arbitrary option values through the real flag
// definitions and configure: a value is accepted or refused with a
// usageError, never a panic.
func FuzzConfigure(f *testing.F) {
	for _, s := range []string{
		"--stop-timeout\x0030s", "--kill-margin\x00-1", "--rewrite\x00TERM:QUIT", "--rewrite\x00:",
		"--imds\x00maybe", "--imds-endpoint\x00http://[::1", "--notices\x00spot,,asg", "--hibernate\x00",
		"--notice-signal\x0099", "--imds-poll-interval\x001e9", "--stale-after\x00NaN", "--log-level\x00DEBUG",
		"--simulate-notice\x000.0000001", "--hook-timeout\x00-0", "--pre-stop\x00", "--notice-file\x00/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := append([]string{"spotinit"}, strings.Split(s, "\x00")...)
		app := newApp(func(c *cli.Context) error {
			_, err := configure(c, []string{"true"})
			var ue usageError
			if err != nil && !errors.As(err, &ue) {
				t.Fatalf("%q: configure's error %v is not a usage error", args, err)
			}
			return err
		})
		app.Writer, app.ErrWriter = io.Discard, io.Discard
		_ = app.Run(args) // any error is reported with status 125; a panic fails the fuzz
	})
}
