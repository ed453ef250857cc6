package interruption

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// scheduledLayout is the date layout of events/maintenance/scheduled: the
// day of the month is not zero-padded ("1 Jan 2020 01:03:47 GMT").
const scheduledLayout = "2 Jan 2006 15:04:05 GMT"

// spotNotice is spot/instance-action.
type spotNotice struct {
	Action string
	Time   time.Time
}

// parseSpot parses spot/instance-action, e.g.
// {"action":"terminate","time":"2017-09-18T08:22:00Z"}. Both fields are
// required; the action is returned lower-cased and is not checked here.
func parseSpot(body []byte) (spotNotice, error) {
	var raw struct {
		Action *string `json:"action"`
		Time   *string `json:"time"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return spotNotice{}, fmt.Errorf("parse spot instance-action: %w", err)
	}
	if raw.Action == nil || strings.TrimSpace(*raw.Action) == "" {
		return spotNotice{}, errors.New("parse spot instance-action: no action")
	}
	if raw.Time == nil {
		return spotNotice{}, errors.New("parse spot instance-action: no time")
	}
	t, err := parseRFC3339(*raw.Time)
	if err != nil {
		return spotNotice{}, fmt.Errorf("parse spot instance-action: %w", err)
	}
	return spotNotice{Action: strings.ToLower(strings.TrimSpace(*raw.Action)), Time: t}, nil
}

// parseRebalance parses events/recommendations/rebalance, e.g.
// {"noticeTime":"2020-10-27T08:22:00Z"}, and returns the notice time.
func parseRebalance(body []byte) (time.Time, error) {
	var raw struct {
		NoticeTime *string `json:"noticeTime"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return time.Time{}, fmt.Errorf("parse rebalance recommendation: %w", err)
	}
	if raw.NoticeTime == nil {
		return time.Time{}, errors.New("parse rebalance recommendation: no noticeTime")
	}
	t, err := parseRFC3339(*raw.NoticeTime)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse rebalance recommendation: %w", err)
	}
	return t, nil
}

// parseASG reports whether autoscaling/target-lifecycle-state says the
// instance is being terminated.
func parseASG(body []byte) bool {
	return string(bytes.TrimSpace(body)) == "Terminated"
}

// scheduledEvent is one entry of events/maintenance/scheduled.
type scheduledEvent struct {
	Code      string
	EventID   string
	State     string
	NotBefore time.Time
}

// parseScheduled parses events/maintenance/scheduled, a JSON array such as
//
//	[{"NotBefore":"21 Jan 2019 09:00:43 GMT","NotAfter":"21 Jan 2019 09:17:23 GMT",
//	  "Code":"system-reboot","Description":"scheduled reboot",
//	  "EventId":"instance-event-0d59937288b749b32","State":"active"}]
//
// An empty body or null means no events. An entry without an EventId or
// with an unreadable NotBefore is left out and reported in the error, which
// is returned beside the good entries; the caller must then not conclude
// that an event missing from the result has gone.
func parseScheduled(body []byte) ([]scheduledEvent, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	var raw []struct {
		NotBefore string `json:"NotBefore"`
		Code      string `json:"Code"`
		EventID   string `json:"EventId"`
		State     string `json:"State"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("parse scheduled events: %w", err)
	}
	var events []scheduledEvent
	var errs []error
	for i, r := range raw {
		id := strings.TrimSpace(r.EventID)
		if id == "" {
			errs = append(errs, fmt.Errorf("parse scheduled events: entry %d: no EventId", i))
			continue
		}
		nb, err := parseScheduledTime(r.NotBefore)
		if err != nil {
			errs = append(errs, fmt.Errorf("parse scheduled event %q: NotBefore: %w", id, err))
			continue
		}
		events = append(events, scheduledEvent{
			Code:      strings.ToLower(strings.TrimSpace(r.Code)),
			EventID:   id,
			State:     strings.ToLower(strings.TrimSpace(r.State)),
			NotBefore: nb,
		})
	}
	return events, errors.Join(errs...)
}

// parseScheduledTime parses a scheduled event's date ("21 Jan 2019 09:00:43
// GMT"). RFC 3339 is accepted too, in case the format is ever modernised.
func parseScheduledTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(scheduledLayout, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("unknown date format %q (want like %q)", truncate(s, 64), scheduledLayout)
}

func parseRFC3339(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339", truncate(s, 64))
	}
	return t.UTC(), nil
}

// truncate shortens s for error messages, so a huge field never floods the
// log.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
