package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"time"
)

// The form of every log record is decided here, once, so that the packages
// log typed values (time.Time, time.Duration, []string) and never format
// them:
//
//   - every record carries logger=spotinit, so that spotinit's lines never
//     pass for the app's own logfmt;
//   - every time, the record's own included, is UTC RFC 3339 with exactly
//     milliseconds: 2026-12-04T14:24:36.956Z;
//   - every duration is in seconds, with three decimals: lead=117.939;
//   - in text, lists and structures are JSON, with &, < and > unescaped:
//     argv="[\"sh\",\"-c\",\"exit 3\"]"
//     (in JSON they are JSON arrays and objects anyway).
//
// No attribute may be named time, level, msg or logger: the tests fail on a
// record with a key twice.
const (
	loggerKey  = "logger"
	loggerName = "spotinit"
	timeLayout = "2006-01-02T15:04:05.000Z"
)

// logs is spotinit's logging: Logger for everything, and the unfiltered
// handler under it for the stop report, which is printed at every level
// but error.
type logs struct {
	*slog.Logger
	all   slog.Handler // every level, in the chosen format
	level slog.Level
}

// newLogs builds the logging on w in format ("text" or "json") at level
// ("debug", "info", "warn" or "error").
func newLogs(w io.Writer, format, level string) (logs, error) {
	var lv slog.Level
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		lv = slog.LevelDebug
	case "info":
		lv = slog.LevelInfo
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return logs{}, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	var asJSON bool
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "text":
	case "json":
		asJSON = true
	default:
		return logs{}, usagef("--log-format %q: want text or json", format)
	}
	all := newHandler(w, asJSON)
	return logs{Logger: slog.New(leveled{lv, all}), all: all, level: lv}, nil
}

// newHandler is the one handler of spotinit's records, at every level.
func newHandler(w io.Writer, asJSON bool) slog.Handler {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: replaceAttr(!asJSON)}
	var h slog.Handler
	if asJSON {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return h.WithAttrs([]slog.Attr{slog.String(loggerKey, loggerName)})
}

// replaceAttr gives times, durations and (in text) lists their one form.
func replaceAttr(text bool) func([]string, slog.Attr) slog.Attr {
	return func(_ []string, a slog.Attr) slog.Attr {
		switch a.Value.Kind() {
		case slog.KindTime:
			a.Value = slog.StringValue(formatTime(a.Value.Time()))
		case slog.KindDuration:
			a.Value = slog.AnyValue(seconds(a.Value.Duration()))
		case slog.KindAny:
			if text && isComposite(a.Value.Any()) {
				if b, err := textJSON(a.Value.Any()); err == nil {
					a.Value = slog.StringValue(string(b))
				}
			}
		}
		return a
	}
}

// textJSON is v as JSON for a text record, with &, < and > kept as they
// are: json.Marshal would write them as \u0026, \u003c and \u003e (safe
// in HTML, unreadable in a log line of an argv such as "a&b").
func textJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// isComposite reports whether v is a list, a map or a struct that has no
// text form of its own (an error, a TextMarshaler or a Stringer keeps it).
func isComposite(v any) bool {
	switch v.(type) {
	case error, fmt.Stringer, interface{ MarshalText() ([]byte, error) }:
		return false
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Struct:
		return true
	}
	return false
}

// seconds is a duration as every record shows it: seconds with exactly
// three decimals, a bare number in text and a number in JSON.
type seconds time.Duration

func (s seconds) String() string {
	ms := time.Duration(s).Round(time.Millisecond).Milliseconds()
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	return fmt.Sprintf("%s%d.%03d", sign, ms/1000, ms%1000)
}

func (s seconds) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
func (s seconds) MarshalJSON() ([]byte, error) { return []byte(s.String()), nil }

// leveled passes the records at or above min to h.
type leveled struct {
	min slog.Level
	h   slog.Handler
}

func (l leveled) Enabled(_ context.Context, lv slog.Level) bool { return lv >= l.min }
func (l leveled) Handle(ctx context.Context, r slog.Record) error {
	return l.h.Handle(ctx, r)
}
func (l leveled) WithAttrs(as []slog.Attr) slog.Handler { return leveled{l.min, l.h.WithAttrs(as)} }
func (l leveled) WithGroup(name string) slog.Handler    { return leveled{l.min, l.h.WithGroup(name)} }

// hookLog turns the hooks' output lines ("hook NAME: text", as package
// hooks writes them) into "hook output" records, in both formats: every
// line spotinit writes is a record, and --log-level treats hook output as
// any other INFO record.
type hookLog struct{ log *slog.Logger }

func (h hookLog) Write(p []byte) (int, error) {
	line := strings.TrimSuffix(string(p), "\n")
	name, text, _ := strings.Cut(strings.TrimPrefix(line, "hook "), ": ")
	h.log.Info("hook output", "hook", name, "line", text)
	return len(p), nil
}
