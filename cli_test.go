package main

import (
	"strings"
	"testing"
	"time"
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
