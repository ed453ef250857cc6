package simulator

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// faultTarget is a short name for a fault path in the scenario text.
type faultTarget struct{ name, path string }

// faultTargets lists the short names for fault paths.
func faultTargets() []faultTarget {
	return []faultTarget{
		{"all", ""},
		{"token", TokenPath},
		{"spot", SpotPath},
		{"asg", ASGPath},
		{"rebalance", RebalancePath},
		{"scheduled", ScheduledPath},
	}
}

// ParseScenario parses the scenario text described in the package
// documentation, such as "spot=2s fault=token:403:0s-5s". An empty spec is
// the zero Scenario. Errors name the clause and what is wrong in it.
func ParseScenario(spec string) (Scenario, error) {
	var sc Scenario
	seen := map[string]bool{}
	for _, clause := range strings.FieldsFunc(spec, isSep) {
		key, val, ok := strings.Cut(clause, "=")
		if !ok {
			return Scenario{}, fmt.Errorf("scenario clause %q: want key=value", clause)
		}
		switch key {
		case "spot", "asg", "rebalance", "ttlmax":
			if seen[key] {
				return Scenario{}, fmt.Errorf("scenario clause %q: %s given twice", clause, key)
			}
			seen[key] = true
		}
		var err error
		switch key {
		case "spot":
			sc.Spot, err = parseSpot(val)
		case "asg":
			sc.ASG, err = parseDelayed(val)
		case "rebalance":
			sc.Rebalance, err = parseDelayed(val)
		case "ttlmax":
			sc.TokenTTLMax, err = parseDur(val)
		case "scheduled":
			var ev ScheduledEvent
			ev, err = parseScheduled(val)
			sc.Scheduled = append(sc.Scheduled, ev)
		case "fault":
			var f Fault
			f, err = parseFault(val)
			sc.Faults = append(sc.Faults, f)
		default:
			return Scenario{}, fmt.Errorf("scenario clause %q: unknown key %q", clause, key)
		}
		if err != nil {
			return Scenario{}, fmt.Errorf("scenario clause %q: %w", clause, err)
		}
	}
	if err := sc.Validate(); err != nil {
		return Scenario{}, err
	}
	return sc, nil
}

func isSep(r rune) bool { return r == ';' || unicode.IsSpace(r) }

// parseDur parses a duration that must not be negative.
func parseDur(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

func parseDelayed(s string) (*Delayed, error) {
	d, err := parseDur(s)
	if err != nil {
		return nil, err
	}
	return &Delayed{After: d}, nil
}

// parseTime parses an RFC 3339 time into UTC, within years 1 to 9999 so
// that it can be written back.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q (want RFC 3339)", s)
	}
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("time %q out of range", s)
	}
	return t, nil
}

// unescape decodes %XX escapes in a free-text value.
func unescape(s string) (string, error) {
	u, err := url.PathUnescape(s)
	if err != nil {
		return "", fmt.Errorf("bad escape in %q", s)
	}
	return u, nil
}

// options splits "k=v" or "flag" options, refusing repeats.
func options(opts []string, f func(k, v string, hasV bool) error) error {
	seen := map[string]bool{}
	for _, o := range opts {
		k, v, hasV := strings.Cut(o, "=")
		if seen[k] {
			return fmt.Errorf("option %q given twice", k)
		}
		seen[k] = true
		if err := f(k, v, hasV); err != nil {
			return err
		}
	}
	return nil
}

func parseSpot(val string) (*SpotNotice, error) {
	parts := strings.Split(val, ",")
	after, err := parseDur(parts[0])
	if err != nil {
		return nil, err
	}
	sp := &SpotNotice{After: after}
	err = options(parts[1:], func(k, v string, hasV bool) error {
		switch {
		case k == "moving" && !hasV:
			sp.MovingTime = true
		case k == "action" && hasV:
			a, err := unescape(v)
			if err == nil && a == "" {
				err = errors.New("empty action")
			}
			sp.Action = a
			return err
		case k == "lead" && hasV:
			d, err := time.ParseDuration(v)
			switch {
			case err != nil:
				return fmt.Errorf("bad duration %q", v)
			case d == 0:
				return errors.New("lead must not be zero (leave it out for the default 2m)")
			}
			sp.Lead = d
		case k == "time" && hasV:
			t, err := parseTime(v)
			sp.Time = &t
			return err
		default:
			return fmt.Errorf("unknown spot option %q", k)
		}
		return nil
	})
	if err == nil && sp.MovingTime && sp.Time != nil {
		err = errors.New("moving and time exclude each other")
	}
	if err != nil {
		return nil, err
	}
	return sp, nil
}

func parseScheduled(val string) (ScheduledEvent, error) {
	var ev ScheduledEvent
	parts := strings.Split(val, ",")
	code, when, ok := strings.Cut(parts[0], "@")
	if !ok {
		return ev, errors.New("want CODE@WHEN[/APPEAR]")
	}
	var err error
	if ev.Code, err = unescape(code); err != nil {
		return ev, err
	}
	if ev.Code == "" {
		return ev, errors.New("empty event code")
	}
	when, appear, hasAppear := strings.Cut(when, "/")
	if hasAppear {
		if ev.After, err = parseDur(appear); err != nil {
			return ev, err
		}
	}
	switch {
	case strings.HasPrefix(when, "+"):
		if ev.StartsIn, err = time.ParseDuration(when[1:]); err != nil || strings.HasPrefix(when[1:], "-") {
			return ev, fmt.Errorf("bad start %q", when)
		}
	case strings.HasPrefix(when, "-"):
		if ev.StartsIn, err = time.ParseDuration(when); err != nil {
			return ev, fmt.Errorf("bad start %q", when)
		}
	default:
		if ev.NotBefore, err = parseTime(when); err != nil {
			return ev, err
		}
	}
	err = options(parts[1:], func(k, v string, hasV bool) error {
		var err error
		switch {
		case !hasV:
			return fmt.Errorf("unknown scheduled option %q", k)
		case k == "state":
			ev.State, err = unescape(v)
		case k == "id":
			ev.EventID, err = unescape(v)
		case k == "desc":
			ev.Description, err = unescape(v)
		case k == "lasts":
			ev.Lasts, err = parseDur(v)
		case k == "notafter":
			ev.NotAfter, err = parseTime(v)
		default:
			return fmt.Errorf("unknown scheduled option %q", k)
		}
		return err
	})
	if err == nil && ev.Lasts != 0 && !ev.NotAfter.IsZero() {
		err = errors.New("lasts and notafter exclude each other")
	}
	return ev, err
}

func parseFault(val string) (Fault, error) {
	var f Fault
	target, rest, more := strings.Cut(val, ":")
	if err := f.setTarget(target); err != nil {
		return f, err
	}
	seen := map[string]bool{}
	once := func(kind string) error {
		if seen[kind] {
			return fmt.Errorf("fault %s given twice", kind)
		}
		seen[kind] = true
		return nil
	}
	for more {
		if b, ok := strings.CutPrefix(rest, "body="); ok {
			body, err := unescape(b)
			if err == nil && body == "" {
				err = errors.New("empty body (an empty answer is a status, such as :200)")
			}
			f.Body = body
			return f, err
		}
		var item string
		item, rest, more = strings.Cut(rest, ":")
		var err error
		switch {
		case item == "reset":
			err = once("reset")
			f.Reset = true
		case item == "drip":
			err = once("drip")
			f.Drip = true
		case strings.HasPrefix(item, "drip="):
			if err = once("drip"); err == nil {
				f.Drip = true
				f.DripEvery, err = parseDur(item[len("drip="):])
			}
		case strings.HasPrefix(item, "delay="):
			if err = once("delay"); err == nil {
				f.Delay, err = parseDur(item[len("delay="):])
			}
		case len(item) == 3 && strings.Trim(item, "0123456789") == "":
			if err = once("status"); err == nil {
				f.Status, _ = strconv.Atoi(item)
				if f.Status < 200 || f.Status > 599 {
					err = fmt.Errorf("status %d outside 200-599", f.Status)
				}
			}
		case strings.Contains(item, "-"):
			if err = once("window"); err == nil {
				err = f.setWindow(item)
			}
		default:
			err = fmt.Errorf("unknown fault item %q", item)
		}
		if err != nil {
			return f, err
		}
	}
	if f.Status == 0 && f.Delay == 0 && !f.Drip && !f.Reset {
		return f, errors.New("fault does nothing (give a status, body=, delay=, drip or reset)")
	}
	return f, nil
}

func (f *Fault) setTarget(target string) error {
	var names []string
	for _, t := range faultTargets() {
		if target == t.name {
			f.Path = t.path
			return nil
		}
		names = append(names, t.name)
	}
	if !strings.HasPrefix(target, "/") {
		return fmt.Errorf("unknown fault target %q (want %s or a /path)", target, strings.Join(names, ", "))
	}
	p, err := unescape(target)
	f.Path = p
	return err
}

func (f *Fault) setWindow(item string) error {
	from, until, _ := strings.Cut(item, "-")
	var err error
	if from != "" {
		if f.From, err = parseDur(from); err != nil {
			return err
		}
	}
	if until != "" {
		if f.Until, err = parseDur(until); err != nil {
			return err
		}
	}
	if f.Until != 0 && f.Until <= f.From {
		return fmt.Errorf("window %q ends before it starts", item)
	}
	return nil
}

// String returns sc in the scenario text, which ParseScenario reads back to
// an equal Scenario. Values that the text cannot hold (a fault path that
// does not start with "/") are written as they are and will not parse.
func (sc Scenario) String() string {
	var out []string
	if sp := sc.Spot; sp != nil {
		s := "spot=" + sp.After.String()
		if sp.Action != "" {
			s += ",action=" + escape(sp.Action, ",")
		}
		if sp.Lead != 0 {
			s += ",lead=" + sp.Lead.String()
		}
		if sp.MovingTime {
			s += ",moving"
		}
		if sp.Time != nil {
			s += ",time=" + sp.Time.UTC().Format(time.RFC3339Nano)
		}
		out = append(out, s)
	}
	if sc.ASG != nil {
		out = append(out, "asg="+sc.ASG.After.String())
	}
	if sc.Rebalance != nil {
		out = append(out, "rebalance="+sc.Rebalance.After.String())
	}
	if sc.TokenTTLMax != 0 {
		out = append(out, "ttlmax="+sc.TokenTTLMax.String())
	}
	for _, ev := range sc.Scheduled {
		s := "scheduled=" + escape(ev.Code, ",@")
		switch {
		case !ev.NotBefore.IsZero():
			s += "@" + ev.NotBefore.UTC().Format(time.RFC3339Nano)
		case ev.StartsIn < 0:
			s += "@" + ev.StartsIn.String()
		default:
			s += "@+" + ev.StartsIn.String()
		}
		s += "/" + ev.After.String()
		for _, o := range [...]struct{ k, v string }{{"state", ev.State}, {"id", ev.EventID}, {"desc", ev.Description}} {
			if o.v != "" {
				s += "," + o.k + "=" + escape(o.v, ",")
			}
		}
		if ev.Lasts != 0 {
			s += ",lasts=" + ev.Lasts.String()
		}
		if !ev.NotAfter.IsZero() {
			s += ",notafter=" + ev.NotAfter.UTC().Format(time.RFC3339Nano)
		}
		out = append(out, s)
	}
	for _, f := range sc.Faults {
		s := "fault=" + escape(f.Path, ":")
		for _, t := range faultTargets() {
			if f.Path == t.path {
				s = "fault=" + t.name
			}
		}
		if f.Status != 0 {
			s += ":" + strconv.Itoa(f.Status)
		}
		if f.From != 0 || f.Until != 0 {
			s += ":" + f.From.String() + "-"
			if f.Until != 0 {
				s += f.Until.String()
			}
		}
		if f.Delay != 0 {
			s += ":delay=" + f.Delay.String()
		}
		switch {
		case f.Drip && f.DripEvery != 0:
			s += ":drip=" + f.DripEvery.String()
		case f.Drip:
			s += ":drip"
		}
		if f.Reset {
			s += ":reset"
		}
		if f.Body != "" {
			s += ":body=" + escape(f.Body, "")
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// escape writes s so that it survives the scenario text: separators,
// controls, non-ASCII bytes, "%" and the bytes in special become %XX.
func escape(s, special string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '%' || c == ';' || strings.IndexByte(special, c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
