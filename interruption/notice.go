package interruption

import (
	"fmt"
	"strings"
	"time"
)

// Kind names a kind of notice. Its string is the name the consumer shows to
// hooks (SPOTINIT_EVENT).
type Kind string

// The kinds of notice IMDS can give.
const (
	Spot      Kind = "spot-interruption" // spot/instance-action
	Rebalance Kind = "rebalance"         // events/recommendations/rebalance
	Scheduled Kind = "scheduled-event"   // events/maintenance/scheduled
	ASG       Kind = "asg-terminate"     // autoscaling/target-lifecycle-state == Terminated
)

// ParseKinds parses a comma-separated list of notice kinds ("spot", "asg",
// "rebalance", "scheduled"; case and blanks around names do not matter;
// empty items are skipped). Each kind appears at most once in the result,
// in the order first given. An empty list yields no kinds.
func ParseKinds(s string) ([]Kind, error) {
	var kinds []Kind
	for item := range strings.SplitSeq(s, ",") {
		name := strings.ToLower(strings.TrimSpace(item))
		if name == "" {
			continue
		}
		k, ok := kindByName(name)
		if !ok {
			return nil, fmt.Errorf("unknown notice kind %q (want spot, asg, rebalance or scheduled)", strings.TrimSpace(item))
		}
		if !hasKind(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	return kinds, nil
}

// kindByName maps the names accepted by ParseKinds to kinds.
func kindByName(name string) (Kind, bool) {
	switch name {
	case "spot":
		return Spot, true
	case "asg":
		return ASG, true
	case "rebalance":
		return Rebalance, true
	case "scheduled":
		return Scheduled, true
	}
	return "", false
}

func hasKind(kinds []Kind, k Kind) bool {
	for _, have := range kinds {
		if have == k {
			return true
		}
	}
	return false
}

// Notice is one notice seen in IMDS.
type Notice struct {
	// Kind says which IMDS path gave the notice.
	Kind Kind
	// Action is what will happen: for Spot terminate, stop or hibernate;
	// for Scheduled the event code (e.g. instance-stop); "terminate" for
	// ASG; "rebalance" for Rebalance.
	Action string
	// ID identifies the notice for deduplication: "spot/"+Action for Spot,
	// the EventId for Scheduled, the kind for ASG and Rebalance. It never
	// contains a time.
	ID string
	// Time is the notice's own time as IMDS gave it (Spot "time",
	// Rebalance "noticeTime", Scheduled NotBefore); zero for ASG.
	Time time.Time
	// Deadline is when the instance is expected to go; zero when there is
	// none (Rebalance). It may already be in the past.
	Deadline time.Time
	// Seen is when spotinit first saw the notice (for Update, when it saw
	// the earlier deadline).
	Seen time.Time
	// Update marks a repeat of an already delivered ID whose deadline moved
	// earlier. A deadline that moves later is never delivered.
	Update bool
}

// Mode says whether to watch IMDS.
type Mode int

// The modes. The zero Mode is Auto.
const (
	// Auto watches IMDS when it is there: it skips Fargate and
	// AWS_EC2_METADATA_DISABLED=true, and probes first; when the probe
	// finds no usable IMDS it logs one line and re-probes rarely.
	Auto Mode = iota
	// On watches IMDS whatever happens, retrying with backoff and warning
	// (rate-limited) about what fails.
	On
	// Off does not watch IMDS.
	Off
)

// ParseMode parses "auto", "on" or "off" (case and surrounding blanks do
// not matter).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		return Auto, nil
	case "on":
		return On, nil
	case "off":
		return Off, nil
	}
	return Auto, fmt.Errorf("unknown imds mode %q (want auto, on or off)", s)
}

// String returns the name ParseMode accepts.
func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case On:
		return "on"
	case Off:
		return "off"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}
