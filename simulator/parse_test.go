package simulator

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseScenario(t *testing.T) {
	t2020 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		spec string
		want Scenario
	}{
		{"", Scenario{}},
		{" ;\t; ", Scenario{}},
		{"spot=2s", Scenario{Spot: &SpotNotice{After: 2 * time.Second}}},
		{"spot=1s,action=stop,lead=30s", Scenario{Spot: &SpotNotice{After: time.Second, Action: "stop", Lead: 30 * time.Second}}},
		{"spot=0s,moving", Scenario{Spot: &SpotNotice{MovingTime: true}}},
		{"spot=0s,lead=-5m", Scenario{Spot: &SpotNotice{Lead: -5 * time.Minute}}},
		{"spot=0s,time=2020-01-01T00:00:00Z", Scenario{Spot: &SpotNotice{Time: &t2020}}},
		{"spot=0s,time=2020-01-01T01:00:00+01:00", Scenario{Spot: &SpotNotice{Time: &t2020}}},
		{"spot=0,action=re%20boot%2C", Scenario{Spot: &SpotNotice{Action: "re boot,"}}},
		{"asg=3s", Scenario{ASG: &Delayed{After: 3 * time.Second}}},
		{"rebalance=1s", Scenario{Rebalance: &Delayed{After: time.Second}}},
		{"ttlmax=1s", Scenario{TokenTTLMax: time.Second}},
		{"scheduled=instance-stop@+10m/0s", Scenario{Scheduled: []ScheduledEvent{{Code: "instance-stop", StartsIn: 10 * time.Minute}}}},
		{"scheduled=system-reboot@-1h", Scenario{Scheduled: []ScheduledEvent{{Code: "system-reboot", StartsIn: -time.Hour}}}},
		{"scheduled=instance-retirement@2020-01-01T00:00:00Z/5s,state=completed,id=instance-event-1,desc=old%20host,lasts=2h",
			Scenario{Scheduled: []ScheduledEvent{{Code: "instance-retirement", NotBefore: t2020, After: 5 * time.Second,
				State: "completed", EventID: "instance-event-1", Description: "old host", Lasts: 2 * time.Hour}}}},
		{"scheduled=a@+0s,notafter=2020-01-01T00:00:00Z scheduled=b@+1s",
			Scenario{Scheduled: []ScheduledEvent{{Code: "a", NotAfter: t2020}, {Code: "b", StartsIn: time.Second}}}},
		{"fault=/latest/api/token:403", Scenario{Faults: []Fault{{Path: TokenPath, Status: 403}}}},
		{"fault=spot:500:0s-5s", Scenario{Faults: []Fault{{Path: SpotPath, Status: 500, Until: 5 * time.Second}}}},
		{"fault=spot:404:10s-", Scenario{Faults: []Fault{{Path: SpotPath, Status: 404, From: 10 * time.Second}}}},
		{"fault=spot:404:-10s", Scenario{Faults: []Fault{{Path: SpotPath, Status: 404, Until: 10 * time.Second}}}},
		{`fault=spot:body={"action":`, Scenario{Faults: []Fault{{Path: SpotPath, Body: `{"action":`}}}},
		{`fault=spot:503:body=a:b,c%20d%3B`, Scenario{Faults: []Fault{{Path: SpotPath, Status: 503, Body: "a:b,c d;"}}}},
		{"fault=token:delay=5s", Scenario{Faults: []Fault{{Path: TokenPath, Delay: 5 * time.Second}}}},
		{"fault=all:reset", Scenario{Faults: []Fault{{Reset: true}}}},
		{"fault=asg:drip", Scenario{Faults: []Fault{{Path: ASGPath, Drip: true}}}},
		{"fault=rebalance:drip=5ms:200", Scenario{Faults: []Fault{{Path: RebalancePath, Drip: true, DripEvery: 5 * time.Millisecond, Status: 200}}}},
		{"fault=scheduled:delay=1s:reset:1s-2s", Scenario{Faults: []Fault{{Path: ScheduledPath, Delay: time.Second, Reset: true, From: time.Second, Until: 2 * time.Second}}}},
		{"fault=/latest/meta-data/a%3Ab:429", Scenario{Faults: []Fault{{Path: "/latest/meta-data/a:b", Status: 429}}}},
		{"spot=2s;asg=3s rebalance=1s\nfault=token:500;fault=spot:500",
			Scenario{Spot: &SpotNotice{After: 2 * time.Second}, ASG: &Delayed{After: 3 * time.Second}, Rebalance: &Delayed{After: time.Second},
				Faults: []Fault{{Path: TokenPath, Status: 500}, {Path: SpotPath, Status: 500}}}},
	} {
		got, err := ParseScenario(tc.spec)
		if err != nil {
			t.Errorf("ParseScenario(%q): %v", tc.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseScenario(%q):\n got %s\nwant %s", tc.spec, dump(got), dump(tc.want))
		}
		if back, err := ParseScenario(got.String()); err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("%q: String %q does not parse back: %v", tc.spec, got.String(), err)
		}
	}
}

func dump(sc Scenario) string {
	s := fmt.Sprintf("%+v", sc)
	if sc.Spot != nil {
		s += fmt.Sprintf(" spot=%+v", *sc.Spot)
	}
	return s
}

func TestParseScenarioErrors(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"bogus=1", `unknown key "bogus"`},
		{"spot", "want key=value"},
		{"=1s", `unknown key ""`},
		{"spot=", `bad duration ""`},
		{"spot=-1s", "negative duration"},
		{"spot=1x", `bad duration "1x"`},
		{"spot=1s spot=2s", "spot given twice"},
		{"asg=1s asg=1s", "asg given twice"},
		{"spot=1s,colour=red", `unknown spot option "colour"`},
		{"spot=1s,moving=yes", `unknown spot option "moving"`},
		{"spot=1s,action", `unknown spot option "action"`},
		{"spot=1s,action=", "empty action"},
		{"spot=1s,action=%zz", "bad escape"},
		{"spot=1s,lead=0s", "lead must not be zero"},
		{"spot=1s,lead=x", `bad duration "x"`},
		{"spot=1s,action=stop,action=stop", `option "action" given twice`},
		{"spot=1s,time=yesterday", "bad time"},
		{"spot=1s,time=0000-01-01T00:00:00+01:00", "out of range"},
		{"spot=1s,moving,time=2020-01-01T00:00:00Z", "exclude each other"},
		{"rebalance=soon", "bad duration"},
		{"ttlmax=-1s", "negative duration"},
		{"scheduled=instance-stop", "want CODE@WHEN"},
		{"scheduled=@+1s", "empty event code"},
		{"scheduled=a@soon", "bad time"},
		{"scheduled=a@+-1s", "bad start"},
		{"scheduled=a@+1s/-1s", "negative duration"},
		{"scheduled=a@+1s,state", `unknown scheduled option "state"`},
		{"scheduled=a@+1s,size=2", `unknown scheduled option "size"`},
		{"scheduled=a@+1s,lasts=1h,notafter=2020-01-01T00:00:00Z", "exclude each other"},
		{"fault=spot", "fault does nothing"},
		{"fault=spot:", `unknown fault item ""`},
		{"fault=nowhere:500", `unknown fault target "nowhere"`},
		{"fault=spot:500:404", "status given twice"},
		{"fault=spot:99:", `unknown fault item "99"`},
		{"fault=spot:100", "status 100 outside 200-599"},
		{"fault=spot:600", "status 600 outside 200-599"},
		{"fault=spot:500:5s-1s", "ends before it starts"},
		{"fault=spot:500:5s-5s", "ends before it starts"},
		{"fault=spot:500:-1s-5s", "bad duration"},
		{"fault=spot:500:x-", "bad duration"},
		{"fault=spot:500:", `unknown fault item ""`},
		{"fault=spot::500", `unknown fault item ""`},
		{"fault=spot:delay=", "bad duration"},
		{"fault=spot:delay=-1s", "negative duration"},
		{"fault=spot:body=", "empty body"},
		{"fault=spot:hang", `unknown fault item "hang"`},
	} {
		_, err := ParseScenario(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseScenario(%q): error %v, want one containing %q", tc.spec, err, tc.want)
		}
	}
}

func TestScenarioStringOfStructs(t *testing.T) {
	// Scenarios built in Go, not parsed, also round-trip when the text can
	// hold them.
	nb := time.Date(2019, 1, 21, 9, 0, 43, 5, time.UTC)
	sc := Scenario{
		Spot:      &SpotNotice{After: time.Second, Action: "stop now", Lead: time.Minute, Time: &nb},
		Scheduled: []ScheduledEvent{{Code: "x@y,z", NotBefore: nb, NotAfter: nb.Add(time.Hour), Description: "a;b c"}},
		Faults:    []Fault{{Path: "/odd path:%", Status: 500, From: time.Second, Body: "\x00\xff 100%;"}},
	}
	s := sc.String()
	back, err := ParseScenario(s)
	if err != nil || !reflect.DeepEqual(back, sc) {
		t.Fatalf("%q: %v\n got %s\nwant %s", s, err, dump(back), dump(sc))
	}
	if strings.Contains(s, ";") || strings.IndexByte(s, 0) >= 0 || strings.IndexByte(s, 0xff) >= 0 || strings.Count(s, " ") != 2 {
		t.Errorf("separators or raw bytes left in %q", s)
	}
}

func ExampleParseScenario() {
	sc, err := ParseScenario("spot=1s,action=stop asg=3s fault=token:403:0s-5s fault=spot:body={\"action\":")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sc.Spot.After, sc.Spot.Action, sc.ASG.After, len(sc.Faults))
	fmt.Println(sc)
	// Output:
	// 1s stop 3s 2
	// spot=1s,action=stop asg=3s fault=token:403:0s-5s fault=spot:body={"action":
}

func FuzzParseScenario(f *testing.F) {
	for _, s := range []string{
		"spot=2s",
		"spot=1s,action=stop,lead=30s",
		"spot=0s,moving",
		"spot=0s,time=2020-01-01T00:00:00Z",
		"asg=3s rebalance=1s ttlmax=1s",
		"scheduled=instance-stop@+10m/0s,state=active,id=e1,desc=a%20b,lasts=1h",
		"scheduled=system-reboot@2019-01-21T09:00:43Z,notafter=2019-01-21T09:17:23Z",
		"fault=/latest/api/token:403",
		"fault=spot:500:0s-5s",
		`fault=spot:body={"action":`,
		"fault=token:delay=5s",
		"fault=all:reset",
		"fault=rebalance:drip=5ms:200:1s-",
		"spot=1s;fault=asg:%zz",
		"fault=/a%3A:429 scheduled=a%40@-1h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		sc, err := ParseScenario(spec)
		if err != nil {
			if !reflect.DeepEqual(sc, Scenario{}) {
				t.Fatalf("%q: error %v with a non-zero scenario", spec, err)
			}
			return
		}
		if err := sc.Validate(); err != nil {
			t.Fatalf("%q parsed but does not validate: %v", spec, err)
		}
		s := sc.String()
		back, err := ParseScenario(s)
		if err != nil {
			t.Fatalf("%q: String %q does not parse: %v", spec, s, err)
		}
		if !reflect.DeepEqual(back, sc) {
			t.Fatalf("%q: String %q parses to\n%s\nwant\n%s", spec, s, dump(back), dump(sc))
		}
	})
}

func TestScenarioAnnounces(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want string
	}{
		{"", ""},
		{"fault=all:500 ttlmax=1s", ""},
		{"spot=1s", "spot"},
		{"rebalance=2s; spot=10s,action=stop", "spot rebalance"},
		{"scheduled=instance-reboot@+1m,state=canceled asg=0s", "asg scheduled"},
		{"scheduled=a@+1m scheduled=b@+2m rebalance=0s asg=1s spot=0s", "spot asg rebalance scheduled"},
	} {
		sc, err := ParseScenario(tc.spec)
		if err != nil {
			t.Fatalf("%q: %v", tc.spec, err)
		}
		if got := strings.Join(sc.Announces(), " "); got != tc.want {
			t.Errorf("%q announces %q, want %q", tc.spec, got, tc.want)
		}
	}
}
