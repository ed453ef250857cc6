package interruption

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestParseSpot(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       spotNotice
		err        string
	}{
		{"terminate", `{"action": "terminate", "time": "2017-09-18T08:22:00Z"}`, spotNotice{"terminate", utc("2017-09-18T08:22:00Z")}, ""},
		{"stop", `{"action":"stop","time":"2020-01-07T01:03:47Z"}`, spotNotice{"stop", utc("2020-01-07T01:03:47Z")}, ""},
		{"hibernate", `{"action":"hibernate","time":"2020-01-07T01:03:47Z"}`, spotNotice{"hibernate", utc("2020-01-07T01:03:47Z")}, ""},
		{"unknown action is parsed", `{"action":"reboot","time":"2020-01-07T01:03:47Z"}`, spotNotice{"reboot", utc("2020-01-07T01:03:47Z")}, ""},
		{"case and blanks", `{"action":" Terminate ","time":" 2020-01-07T01:03:47Z "}`, spotNotice{"terminate", utc("2020-01-07T01:03:47Z")}, ""},
		{"fraction and offset", `{"action":"terminate","time":"2020-01-07T03:03:47.5+02:00"}`, spotNotice{"terminate", utc("2020-01-07T01:03:47.5Z")}, ""},
		{"extra fields", `{"action":"terminate","time":"2020-01-07T01:03:47Z","new":1}`, spotNotice{"terminate", utc("2020-01-07T01:03:47Z")}, ""},
		{"no time", `{"action":"terminate"}`, spotNotice{}, "no time"},
		{"no action", `{"time":"2020-01-07T01:03:47Z"}`, spotNotice{}, "no action"},
		{"empty action", `{"action":"","time":"2020-01-07T01:03:47Z"}`, spotNotice{}, "no action"},
		{"bad time", `{"action":"terminate","time":"07 Jan 2020 01:03:47 GMT"}`, spotNotice{}, "not RFC 3339"},
		{"partial", `{"action":"terminate","ti`, spotNotice{}, "unexpected end"},
		{"empty", ``, spotNotice{}, "unexpected end"},
		{"null", `null`, spotNotice{}, "no action"},
		{"array", `[]`, spotNotice{}, "cannot unmarshal"},
		{"wrong type", `{"action":1,"time":"2020-01-07T01:03:47Z"}`, spotNotice{}, "cannot unmarshal"},
		{"trailing garbage", `{"action":"stop","time":"2020-01-07T01:03:47Z"}x`, spotNotice{}, "invalid character"},
		{"html", `<html>404</html>`, spotNotice{}, "invalid character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSpot([]byte(tc.body))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseSpot(%q) error = %v, want one containing %q", tc.body, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSpot(%q): %v", tc.body, err)
			}
			if got.Action != tc.want.Action || !got.Time.Equal(tc.want.Time) || got.Time.Location() != time.UTC {
				t.Errorf("parseSpot(%q) = %+v, want %+v", tc.body, got, tc.want)
			}
		})
	}
}

func TestParseRebalance(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       time.Time
		err        string
	}{
		{"aws example", `{"noticeTime": "2020-10-27T08:22:00Z"}`, utc("2020-10-27T08:22:00Z"), ""},
		{"no noticeTime", `{}`, time.Time{}, "no noticeTime"},
		{"bad time", `{"noticeTime":"yesterday"}`, time.Time{}, "not RFC 3339"},
		{"partial", `{"noticeTime":"2020-10-27T0`, time.Time{}, "unexpected end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRebalance([]byte(tc.body))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("parseRebalance(%q) = %v, %v; want %v", tc.body, got, err, tc.want)
			}
		})
	}
}

func TestParseASG(t *testing.T) {
	for body, want := range map[string]bool{
		"Terminated":         true,
		"Terminated\n":       true,
		"  Terminated \r\n":  true,
		"InService":          false,
		"Warmed:Terminated":  false,
		"terminated":         false,
		"":                   false,
		"Terminated please!": false,
	} {
		if got := parseASG([]byte(body)); got != want {
			t.Errorf("parseASG(%q) = %v, want %v", body, got, want)
		}
	}
}

func TestParseScheduledTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"21 Jan 2019 09:00:43 GMT", utc("2019-01-21T09:00:43Z"), true},
		{"1 Jan 2020 01:03:47 GMT", utc("2020-01-01T01:03:47Z"), true}, // AWS does not pad the day
		{"01 Jan 2020 01:03:47 GMT", utc("2020-01-01T01:03:47Z"), true},
		{" 7 Jan 2020 01:03:47 GMT ", utc("2020-01-07T01:03:47Z"), true},
		{"2019-01-21T09:00:43Z", utc("2019-01-21T09:00:43Z"), true},
		{"21 Jan 2019 09:00:43 UTC", time.Time{}, false},
		{"Jan 21 2019 09:00:43 GMT", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, err := parseScheduledTime(tc.in)
		if tc.ok != (err == nil) || !got.Equal(tc.want) {
			t.Errorf("parseScheduledTime(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseScheduled(t *testing.T) {
	const awsExample = `[
  {
    "NotBefore" : "21 Jan 2019 09:00:43 GMT",
    "Code" : "system-reboot",
    "Description" : "scheduled reboot",
    "EventId" : "instance-event-0d59937288b749b32",
    "NotAfter" : "21 Jan 2019 09:17:23 GMT",
    "State" : "active"
  }
]`
	for _, tc := range []struct {
		name, body string
		want       []scheduledEvent
		err        string
	}{
		{"aws example", awsExample, []scheduledEvent{{"system-reboot", "instance-event-0d59937288b749b32", "active", utc("2019-01-21T09:00:43Z")}}, ""},
		{"two, normalised", `[{"NotBefore":"1 Feb 2020 01:00:00 GMT","Code":"Instance-Stop","EventId":"e1","State":"Active"},
			{"NotBefore":"2 Feb 2020 01:00:00 GMT","Code":"system-maintenance","EventId":"e2","State":"completed"}]`,
			[]scheduledEvent{{"instance-stop", "e1", "active", utc("2020-02-01T01:00:00Z")}, {"system-maintenance", "e2", "completed", utc("2020-02-02T01:00:00Z")}}, ""},
		{"empty list", `[]`, nil, ""},
		{"empty body", "\n", nil, ""},
		{"null", `null`, nil, ""},
		{"partial", `[{"NotBefore":"1 Feb 2020 01:00:00 GMT","Co`, nil, "unexpected end"},
		{"object", `{"NotBefore":"1 Feb 2020 01:00:00 GMT"}`, nil, "cannot unmarshal"},
		{"one bad date kept apart", `[{"NotBefore":"soon","Code":"instance-stop","EventId":"bad","State":"active"},
			{"NotBefore":"1 Feb 2020 01:00:00 GMT","Code":"instance-stop","EventId":"good","State":"active"}]`,
			[]scheduledEvent{{"instance-stop", "good", "active", utc("2020-02-01T01:00:00Z")}}, `scheduled event "bad"`},
		{"no id", `[{"NotBefore":"1 Feb 2020 01:00:00 GMT","Code":"instance-stop","State":"active"}]`, nil, "no EventId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseScheduled([]byte(tc.body))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want one containing %q", err, tc.err)
				}
			} else if err != nil {
				t.Fatalf("parseScheduled: %v", err)
			}
			if !slices.EqualFunc(got, tc.want, func(a, b scheduledEvent) bool {
				return a.Code == b.Code && a.EventID == b.EventID && a.State == b.State && a.NotBefore.Equal(b.NotBefore)
			}) {
				t.Errorf("parseScheduled = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseKinds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Kind
		err  string
	}{
		{"spot,asg", []Kind{Spot, ASG}, ""},
		{"spot,asg,rebalance,scheduled", []Kind{Spot, ASG, Rebalance, Scheduled}, ""},
		{" Scheduled , spot,,spot ", []Kind{Scheduled, Spot}, ""},
		{"", nil, ""},
		{"spot,reboot", nil, `"reboot"`},
		{"spot-interruption", nil, `"spot-interruption"`},
	} {
		got, err := ParseKinds(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseKinds(%q) error = %v, want one naming %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseKinds(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"auto": Auto, "on": On, "off": Off, " ON ": On} {
		got, err := ParseMode(in)
		if err != nil || got != want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got.String() != strings.ToLower(strings.TrimSpace(in)) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	for _, in := range []string{"", "yes", "true", "1"} {
		if _, err := ParseMode(in); err == nil || !strings.Contains(err.Error(), `"`+in+`"`) {
			t.Errorf("ParseMode(%q) error = %v, want one naming the value", in, err)
		}
	}
	var zero Config
	if zero.Mode != Auto {
		t.Errorf("zero Mode = %v, want auto", zero.Mode)
	}
}

func TestResolveEndpoint(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "AWS_EC2_METADATA_SERVICE_ENDPOINT" {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		configured, env, want string
		from                  EndpointSource
		ok                    bool
	}{
		{"", "", "http://169.254.169.254", EndpointDefault, true},
		{"", "http://[fd00:ec2::254]", "http://[fd00:ec2::254]", EndpointFromEnv, true},
		{"http://127.0.0.1:1338", "http://[fd00:ec2::254]", "http://127.0.0.1:1338", EndpointConfigured, true},
		// The variable is not read when the option is given, so a bad
		// value there is not this caller's business.
		{"http://127.0.0.1:1338", "ftp://x", "http://127.0.0.1:1338", EndpointConfigured, true},
		// A refused value comes back with the setting that holds it.
		{"https://imds.example", "", "https://imds.example", EndpointConfigured, false},
		{"127.0.0.1:1338", "", "127.0.0.1:1338", EndpointConfigured, false},
		{"ftp://x", "", "ftp://x", EndpointConfigured, false},
		{"http://", "", "http://", EndpointConfigured, false},
		{"", "not a url", "not a url", EndpointFromEnv, false},
		{"", "ftp://x", "ftp://x", EndpointFromEnv, false},
		{"", " ", " ", EndpointFromEnv, false}, // blank is a value; only empty means unset
	} {
		got, from, err := ResolveEndpoint(tc.configured, env(tc.env))
		if tc.ok != (err == nil) || got != tc.want || from != tc.from {
			t.Errorf("ResolveEndpoint(%q, env %q) = %q, %v, %v; want %q, %v (ok %v)", tc.configured, tc.env, got, from, err, tc.want, tc.from, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.want)) {
			t.Errorf("ResolveEndpoint(%q, env %q) error %q does not name the value", tc.configured, tc.env, err)
		}
	}
	if got := EndpointFromEnv.String(); got != "AWS_EC2_METADATA_SERVICE_ENDPOINT" {
		t.Errorf("EndpointFromEnv = %q, want the variable's name", got)
	}
}
