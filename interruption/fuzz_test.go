package interruption

import (
	"strings"
	"testing"
	"time"
)

func FuzzParseSpot(f *testing.F) {
	for _, s := range []string{
		`{"action":"terminate","time":"2017-09-18T08:22:00Z"}`,
		`{"action":"stop","time":"2020-01-07T01:03:47.123+02:00"}`,
		`{"action":"hibernate"}`,
		`{"action":"terminate","ti`,
		`null`, `[]`, ``, `{"action":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sn, err := parseSpot(body)
		if err != nil {
			return
		}
		if sn.Action == "" || sn.Action != strings.ToLower(sn.Action) {
			t.Fatalf("accepted action %q", sn.Action)
		}
		if sn.Time.Location() != time.UTC {
			t.Fatalf("time %v not UTC", sn.Time)
		}
	})
}

func FuzzParseRebalance(f *testing.F) {
	for _, s := range []string{`{"noticeTime":"2020-10-27T08:22:00Z"}`, `{}`, `{"noticeTime":`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tm, err := parseRebalance(body)
		if err == nil && tm.Location() != time.UTC {
			t.Fatalf("time %v not UTC", tm)
		}
	})
}

func FuzzParseScheduled(f *testing.F) {
	for _, s := range []string{
		`[{"NotBefore":"21 Jan 2019 09:00:43 GMT","Code":"system-reboot","Description":"scheduled reboot","EventId":"instance-event-0d59937288b749b32","NotAfter":"21 Jan 2019 09:17:23 GMT","State":"active"}]`,
		`[{"NotBefore":"1 Jan 2020 01:03:47 GMT","Code":"instance-stop","EventId":"e","State":"canceled"},{"NotBefore":"x","EventId":"y"}]`,
		`[]`, `null`, ``, `[{"NotBefore":`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, _ := parseScheduled(body)
		for _, e := range events {
			if strings.TrimSpace(e.EventID) != e.EventID || e.EventID == "" || e.NotBefore.Location() != time.UTC {
				t.Fatalf("bad event accepted: %+v", e)
			}
			if e.Code != strings.ToLower(e.Code) || e.State != strings.ToLower(e.State) {
				t.Fatalf("not normalised: %+v", e)
			}
		}
	})
}

func FuzzParseScheduledTime(f *testing.F) {
	for _, s := range []string{"21 Jan 2019 09:00:43 GMT", "1 Jan 2020 01:03:47 GMT", "2019-01-21T09:00:43Z", "", "31 Feb 2020 25:00:00 GMT"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseScheduledTime(s)
		if err != nil {
			// The input is quoted, cut short, in the error: a huge field
			// must not make a huge log line.
			if len(err.Error()) > 512 {
				t.Fatalf("error too long for a log line: %d bytes", len(err.Error()))
			}
			return
		}
		if tm.Location() != time.UTC {
			t.Fatalf("%q parsed to non-UTC %v", s, tm)
		}
	})
}

func FuzzParseKinds(f *testing.F) {
	for _, s := range []string{"spot,asg", "rebalance, scheduled", "", ",,", "spot,bogus"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kinds, err := ParseKinds(s)
		if err != nil {
			return
		}
		seen := map[Kind]bool{}
		for _, k := range kinds {
			if seen[k] {
				t.Fatalf("ParseKinds(%q) repeats %v", s, k)
			}
			seen[k] = true
			switch k {
			case Spot, ASG, Rebalance, Scheduled:
			default:
				t.Fatalf("ParseKinds(%q) gave unknown kind %q", s, k)
			}
		}
	})
}
