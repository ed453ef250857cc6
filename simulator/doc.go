// Package simulator serves a fake EC2 instance metadata service (IMDS) that
// announces interruption notices on a script.
//
// It owns two things: the HTTP handler that answers like IMDSv2 (session
// tokens required, notices appearing at chosen times after the server's
// start, faults injected on chosen paths and windows), and the small text
// form that describes such a scenario on a command line. spotinit uses it for
// --simulate-notice, which takes this text (or a bare duration, its
// shorthand for a Spot terminate) and serves it on 127.0.0.1, so that every
// notice path can be rehearsed on a laptop, faults included: a rehearsal of
// a flaky IMDS is a rehearsal too. Tests and benchmarks use it as a
// scriptable IMDS with faults.
//
// It must never contact the real IMDS (169.254.169.254) or any other host,
// never listen anywhere but the address it is given, never log a token, and
// never keep a goroutine, timer or connection alive after [Server.Close] or
// after the context given to [Start] is done. It depends on the standard
// library only, because it is compiled into the production binary.
//
// # What is served
//
// Every path but the token path needs a valid token, as IMDSv2 does when
// tokens are required:
//
//	PUT /latest/api/token
//	    needs X-aws-ec2-metadata-token-ttl-seconds: 1..21600 (else 400) and
//	    no X-Forwarded-For header (else 403); answers the token and echoes
//	    the granted TTL in whole seconds (rounded up) in the same header.
//	    Scenario.TokenTTLMax shortens the grant.
//	GET with X-aws-ec2-metadata-token (missing, forged or expired: 401)
//	    /latest/meta-data/instance-id                     InstanceID
//	    /latest/meta-data/placement/region                Region
//	    /latest/dynamic/instance-identity/document        a small JSON document with both
//	    /latest/meta-data/spot/instance-action            {"action":"terminate","time":"2006-01-02T15:04:05Z"}, 404 before
//	    /latest/meta-data/spot/termination-time           the same time as text, 404 before
//	    /latest/meta-data/autoscaling/target-lifecycle-state  InService, then Terminated
//	    /latest/meta-data/events/recommendations/rebalance    {"noticeTime":"..."}, 404 before
//	    /latest/meta-data/events/maintenance/scheduled        a JSON array, [] when empty; dates like 2 Jan 2006 15:04:05 GMT
//
// Other paths answer 404; another method answers 405 (PUT on the token path,
// GET elsewhere). Every answer is text/plain, as the real service's are.
//
// A [Fault] whose path prefix and time window match a request acts before
// all of this (the first matching fault in order wins): it may wait, drop the
// connection, or replace the answer, whatever the method or token. A fault
// that only waits or drips lets the normal answer through afterwards.
//
// # Scenario text
//
// [ParseScenario] reads this grammar; [Scenario.String] writes it.
//
//	scenario   = [ clause { sep clause } ]
//	sep        = one or more of ";" and white space
//	clause     = "spot=" DUR { "," spot-opt }
//	           | "asg=" DUR
//	           | "rebalance=" DUR
//	           | "ttlmax=" DUR
//	           | "scheduled=" CODE "@" WHEN [ "/" DUR ] { "," sched-opt }
//	           | "fault=" TARGET { ":" fault-item } [ ":body=" TEXT ]
//	spot-opt   = "action=" TEXT | "lead=" SDUR | "moving" | "time=" TIME
//	sched-opt  = "state=" TEXT | "id=" TEXT | "desc=" TEXT | "lasts=" DUR | "notafter=" TIME
//	WHEN       = ( "+" | "-" ) DUR | TIME
//	TARGET     = "all" | "token" | "spot" | "asg" | "rebalance" | "scheduled" | "/" path-prefix
//	fault-item = STATUS | [ DUR ] "-" [ DUR ] | "delay=" DUR | "drip" | "drip=" DUR | "reset"
//
// DUR is a Go duration (time.ParseDuration) that must not be negative; SDUR
// may be negative but not zero; TIME is RFC 3339 (years 0001 to 9999 in UTC); STATUS
// is three digits from 200 to 599. TEXT, CODE and path-prefix are literal,
// except that %XX stands for the byte XX: write %20 for a space, %3B for
// ";", %2C for "," inside options, %3A for ":" in a path and %25 for "%".
// ":body=" takes the rest of its clause, so it comes last.
//
// The keys spot, asg, rebalance and ttlmax may appear once; scheduled and
// fault may repeat. Spot options:
//
//	spot=D          a Spot notice visible D after start, action terminate,
//	                time = start + D + lead (lead defaults to 2m)
//	action=A        "terminate", "stop", "hibernate" or anything else
//	lead=L          the notice time is the announcement plus L (L < 0: a past time)
//	moving          serve time = now + lead on every request, as amazon-ec2-metadata-mock does
//	time=T          serve exactly T (a stale notice, a past time)
//
// A scheduled event names its code, when it starts (NotBefore: relative to
// the server's start with a sign, or absolute), and optionally after how long
// it appears (default 0s); its State defaults to "active", its EventId to
// instance-event-NNN, and it has a NotAfter only when lasts or notafter is
// given. A fault's window FROM-UNTIL is relative to start; an empty FROM is
// 0 and an empty or zero UNTIL is forever.
//
// Examples:
//
//	spot=2s
//	spot=1s,action=stop,lead=30s
//	spot=0s,moving
//	spot=0s,time=2020-01-01T00:00:00Z
//	asg=3s rebalance=1s
//	scheduled=instance-stop@+10m/0s,lasts=2h
//	fault=/latest/api/token:403
//	fault=spot:500:0s-5s
//	fault=spot:404:10s-20s       (a notice that vanishes and reappears)
//	fault=spot:body={"action":
//	fault=token:delay=5s
//	fault=spot:drip=200ms
//	fault=all:reset:-3s
package simulator
