// Package logcheck checks spotinit's log records as the tests see them: it
// parses text (slog's key=value) and JSON records, finds what
// docs/stop-report.md and the logging rules forbid (a key twice, a record
// without logger=spotinit, a time without exactly milliseconds, a duration
// in Go's 1m30s form), and validates every stop report, text ones parsed
// back into their JSON shape, against docs/stop-report.schema.json.
//
// Only tests import it; it never reaches the spotinit binary.
package logcheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Record is one log record, its keys in their order, duplicates kept.
type Record struct {
	Line string
	JSON bool
	Keys []string
	// Raw holds each key's last value as written: the text value unquoted
	// (text), or the raw JSON (JSON).
	Raw map[string]string
}

// Get returns a key's value as a string: unquoted text, or a JSON string's
// content.
func (r Record) Get(key string) string {
	v := r.Raw[key]
	if r.JSON {
		var s string
		if json.Unmarshal([]byte(v), &s) == nil {
			return s
		}
	}
	return v
}

// Parse reads line as a record of spotinit. ok is false for a line that is
// not a log record at all (the app's output, a hook's raw line); a line
// that starts like one (`time=` or `{"time":`) must parse.
func Parse(line string) (rec Record, ok bool, err error) {
	switch {
	case strings.HasPrefix(line, `{"time":`):
		rec, err = parseJSON(line)
		return rec, true, err
	case strings.HasPrefix(line, "time="):
		rec, err = parseText(line)
		return rec, true, err
	}
	return Record{}, false, nil
}

func parseJSON(line string) (Record, error) {
	rec := Record{Line: line, JSON: true, Raw: map[string]string{}}
	d := json.NewDecoder(strings.NewReader(line))
	d.UseNumber()
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return rec, fmt.Errorf("not a JSON object")
	}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return rec, err
		}
		key := t.(string)
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return rec, err
		}
		if dup := duplicateKey(raw); dup != "" {
			return rec, fmt.Errorf("key %q twice in the value of %q", dup, key)
		}
		rec.Keys = append(rec.Keys, key)
		rec.Raw[key] = string(raw)
	}
	if _, err := d.Token(); err != nil {
		return rec, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return rec, fmt.Errorf("more after the record")
	}
	return rec, nil
}

// duplicateKey returns a key that some object in the JSON value v holds
// twice, or "".
func duplicateKey(v []byte) string {
	d := json.NewDecoder(bytes.NewReader(v))
	var walk func() string
	walk = func() string {
		t, err := d.Token()
		if err != nil {
			return ""
		}
		switch t {
		case json.Delim('{'):
			seen := map[string]bool{}
			for d.More() {
				k, _ := d.Token()
				key, _ := k.(string)
				if seen[key] {
					return key
				}
				seen[key] = true
				if dup := walk(); dup != "" {
					return dup
				}
			}
			d.Token()
		case json.Delim('['):
			for d.More() {
				if dup := walk(); dup != "" {
					return dup
				}
			}
			d.Token()
		}
		return ""
	}
	return walk()
}

// parseText reads slog's text form: key=value pairs separated by one
// space, a value quoted (as strconv.Quote does) when it holds a space, a
// quote, an = or a non-printing character.
func parseText(line string) (Record, error) {
	rec := Record{Line: line, Raw: map[string]string{}}
	rest := line
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 || strings.ContainsAny(rest[:eq], " \"") {
			return rec, fmt.Errorf("no key=value at %q", clip(rest))
		}
		key := rest[:eq]
		rest = rest[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return rec, fmt.Errorf("value of %s: %w", key, err)
			}
			val, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			end := strings.IndexByte(rest, ' ')
			if end < 0 {
				end = len(rest)
			}
			val, rest = rest[:end], rest[end:]
		}
		if rest != "" {
			if rest[0] != ' ' {
				return rec, fmt.Errorf("value of %s runs on: %q", key, clip(rest))
			}
			rest = rest[1:]
		}
		rec.Keys = append(rec.Keys, key)
		rec.Raw[key] = val
	}
	return rec, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

var (
	timeLike   = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T`)
	timeForm   = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$`)
	goDuration = regexp.MustCompile(`^-?([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$`)
)

// freeText are the keys whose values are others' text (a hook's output
// line, an IMDS body, an error message), which may look like anything.
var freeText = map[string]bool{"line": true, "body": true, "err": true, "error": true, "reason": true, "hint": true, "argv": true}

// Problems lists what breaks the logging rules in rec: a key twice, no
// logger=spotinit, a time not in UTC with exactly milliseconds, a duration
// in Go's form (they are seconds: 117.939).
func (rec Record) Problems() []string {
	var ps []string
	seen := map[string]bool{}
	for _, k := range rec.Keys {
		if seen[k] {
			ps = append(ps, fmt.Sprintf("key %q twice", k))
		}
		seen[k] = true
	}
	if rec.Get("logger") != "spotinit" {
		ps = append(ps, "no logger=spotinit")
	}
	for _, k := range rec.Keys {
		v := rec.Raw[k]
		if freeText[k] {
			continue
		}
		if rec.JSON {
			if !strings.HasPrefix(v, `"`) {
				continue // numbers, lists and objects: not a time, not a Go duration
			}
			v = rec.Get(k)
		}
		if timeLike.MatchString(v) && !timeForm.MatchString(v) {
			ps = append(ps, fmt.Sprintf("%s=%s: want UTC with milliseconds, like 2026-12-04T14:24:36.956Z", k, v))
		}
		if goDuration.MatchString(v) {
			ps = append(ps, fmt.Sprintf("%s=%s: a duration is seconds, like 117.939", k, v))
		}
	}
	return ps
}

// IsStopReport reports whether rec is a stop report.
func (rec Record) IsStopReport() bool { return rec.Get("msg") == "stop report" }

// Document is rec as a JSON document (numbers as json.Number), for
// validation: a JSON record as it is; a text record with each value given
// the type the schema says its key has (a list or an object is JSON in
// text, so nothing is lost).
func (rec Record) Document(s *Schema) (map[string]any, error) {
	if rec.JSON {
		v, err := decode([]byte(rec.Line))
		if err != nil {
			return nil, err
		}
		m, _ := v.(map[string]any)
		return m, nil
	}
	doc := map[string]any{}
	for _, k := range rec.Keys {
		raw := rec.Raw[k]
		typ, _ := s.PropertyType(k)
		switch typ {
		case "integer", "number":
			if _, err := strconv.ParseFloat(raw, 64); err != nil {
				return nil, fmt.Errorf("%s=%s: not a number", k, raw)
			}
			doc[k] = json.Number(raw)
		case "boolean":
			b, err := strconv.ParseBool(raw)
			if err != nil || raw != "true" && raw != "false" {
				return nil, fmt.Errorf("%s=%s: not true or false", k, raw)
			}
			doc[k] = b
		case "array", "object":
			v, err := decode([]byte(raw))
			if err != nil {
				return nil, fmt.Errorf("%s=%s: not JSON: %w", k, raw, err)
			}
			doc[k] = v
		default:
			doc[k] = raw
		}
	}
	return doc, nil
}

// Invariants lists what the schema cannot say about a stop report's fields
// together (docs/stop-report.md states each).
func Invariants(doc map[string]any) []string {
	var ps []string
	num := func(k string) (int64, bool) {
		n, ok := doc[k].(json.Number)
		if !ok {
			return 0, false
		}
		i, err := n.Int64()
		return i, err == nil
	}
	hooks, _ := doc["hooks"].([]any)
	failed, killedHooks := int64(0), int64(0)
	for _, h := range hooks {
		hm, _ := h.(map[string]any)
		if hm["status"] != "ok" {
			failed++
		}
		if hm["killed"] == true {
			killedHooks++
		}
	}
	if n, _ := num("hooks_failed"); n != failed {
		ps = append(ps, fmt.Sprintf("hooks_failed=%d, but %d hooks are not ok", n, failed))
	}
	if n, _ := num("killed_hooks"); n != killedHooks {
		ps = append(ps, fmt.Sprintf("killed_hooks=%d, but %d hooks were killed", n, killedHooks))
	}
	desc, _ := num("killed_descendants")
	want := doc["killed_child"] == true || desc > 0 || killedHooks > 0
	if doc["killed"] != want {
		ps = append(ps, fmt.Sprintf("killed=%v, want %v", doc["killed"], want))
	}
	if _, ok := doc["left"]; ok && doc["killed_child"] == true {
		ps = append(ps, "left with killed_child")
	}
	_, hasAction := doc["action"]
	trigger, _ := doc["trigger"].(string)
	notice := trigger == "spot-interruption" || trigger == "asg-terminate" || trigger == "scheduled-event"
	if hasAction != notice {
		ps = append(ps, fmt.Sprintf("action present %v for trigger %s", hasAction, trigger))
	}
	if _, ok := doc["lead"]; ok == (trigger == "child-exit") {
		ps = append(ps, fmt.Sprintf("lead present %v for trigger %s", ok, trigger))
	}
	if _, ok := doc["child_signal"]; ok {
		if _, ok := doc["child_code"]; !ok {
			ps = append(ps, "child_signal without child_code")
		}
	}
	return ps
}

// CheckReport validates one stop report: the schema, then the invariants.
func CheckReport(s *Schema, rec Record) []string {
	doc, err := rec.Document(s)
	if err != nil {
		return []string{err.Error()}
	}
	var ps []string
	for _, e := range s.Validate(doc) {
		ps = append(ps, "schema: "+e.Error())
	}
	if len(ps) == 0 {
		ps = Invariants(doc)
	}
	return ps
}

// Result is what Check found in some output.
type Result struct {
	Records, Reports int
	Problems         []string // each with the line it is about
}

// Check checks every record in out (any text holding spotinit's records
// among other lines) and validates every stop report.
func Check(s *Schema, out string) Result {
	var res Result
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		rec, ok, err := Parse(line)
		if !ok {
			continue
		}
		res.Records++
		var ps []string
		if err != nil {
			ps = append(ps, "unreadable record: "+err.Error())
		} else {
			ps = rec.Problems()
			if rec.IsStopReport() {
				res.Reports++
				ps = append(ps, CheckReport(s, rec)...)
			}
		}
		for _, p := range ps {
			res.Problems = append(res.Problems, fmt.Sprintf("%s\n\tin %s", p, line))
		}
	}
	return res
}

// CheckFile validates a --report-file document: one JSON document, one
// line, that is a valid stop report.
func CheckFile(s *Schema, content []byte) []string {
	line, rest, _ := bytes.Cut(content, []byte("\n"))
	if len(rest) > 0 || !bytes.HasSuffix(content, []byte("\n")) {
		return []string{"not one line ending in a newline"}
	}
	rec, err := parseJSON(string(line))
	if err != nil {
		return []string{err.Error()}
	}
	ps := rec.Problems()
	if !rec.IsStopReport() {
		ps = append(ps, "not a stop report")
	}
	return append(ps, CheckReport(s, rec)...)
}
