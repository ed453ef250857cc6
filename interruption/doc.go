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
// becomes backoff and rate-limited logging, and reacting to a notice is the
// consumer's business.
//
// It never logs the session token or a request header that carries it.
package interruption
