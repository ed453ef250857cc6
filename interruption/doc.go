// Package interruption watches the EC2 instance metadata service (IMDS) for
// notices that the instance is going away, or may go away: a Spot
// interruption (spot/instance-action), an Auto Scaling termination
// (autoscaling/target-lifecycle-state), a rebalance recommendation
// (events/recommendations/rebalance) and scheduled maintenance events
// (events/maintenance/scheduled). [Watch] delivers each notice once on a
// channel; a notice whose deadline later moves earlier is delivered again
// with Update set.
//
// The package owns the IMDS client (IMDSv2 only, one session token, one
// reused connection), the polling schedule, the parsing of the notice
// formats and their deduplication. It must never signal a process, run a
// hook, exit the program or panic on anything IMDS serves: every failure
// becomes backoff and a bounded number of log lines, and reacting to a
// notice is the consumer's business.
//
// # Requests
//
// Each poll is one SDK call bounded by 1 s, token request included. Within
// it the SDK retries at once, and once, only two things: a 401 (the token
// expired or was revoked: the SDK drops it, fetches a new one and reads
// again, in the same poll), and a connection that broke before any answer.
// A status IMDS chose to send (429, 5xx, 403, ...) fails the poll, and the
// path backs off.
//
// # Schedule
//
// spot/instance-action is read every Config.PollInterval (2 s), the ASG and
// rebalance paths every 5 s and scheduled events every 30 s (or every
// PollInterval, if longer), each ±10 % jitter, counted from the end of the
// previous poll; with Config.EveryPathAtPollInterval (a rehearsal against
// the simulator, which has no rate limit) every path is read every
// PollInterval. After the n-th consecutive failed poll of a path the pause
// is its interval doubled n-1 times, ±10 %, up to a cap; a pause at the
// cap is drawn from the 20 % below it. The cap of spot/instance-action is
// 10 s less the 1 s request bound, so that two of its reads never begin
// more than 10 s apart (a notice gives two minutes); a poll of another path
// that could still run when the next spot read is due waits until after
// it. The other paths cap at 30 s. No cap is below the path's own
// interval, and one normal answer (404 included) returns a path to it.
// With the defaults, the pauses of the spot path after 1, 2, 3, 4... failed
// reads are 2 s, 4 s, 8 s, then 7.2-9 s for as long as the fault lasts.
// (The one exception: a scheduled event about to be acted on is re-read
// first, which may hold up a spot read by one request.)
//
// # Logging
//
// In Auto mode, when a first probe finds no usable IMDS (nothing answers,
// 403, or a token request without an answer), one line "imds unavailable"
// says why and what to change (INFO when nothing answers, as off EC2; WARN
// otherwise); re-probes every 3 minutes are silent.
//
// A fault episode runs from the first failed poll after normal answers
// until every watched path answers normally again. Each class of failure
// (throttled, server-error, timeout, unreachable, ...) is logged once per
// episode, when it is first seen, as a WARN "imds request failed" whose
// error names the class and what was seen on the wire ("throttled: http
// 429", "unreachable: connection refused (ECONNREFUSED)"), with a hint
// where one helps; the end of the episode is one INFO "imds answering
// again" with fault_duration and failed_polls. A class that flaps, in and
// out of episodes, is warned about at most once a minute; the episodes not
// warned about are logged at debug, and counted in the next warning's
// unlogged_episodes. Every failed poll is a debug line carrying the SDK's
// whole error chain. A notice that does not parse is warned about at most
// once a minute per path. Durations and times are logged as time.Duration
// and time.Time values, for the handler to format.
//
// It never logs the session token or a request header that carries it.
package interruption
