// Package preflight answers, before the first interruption, whether
// spotinit's shutdown path will work where it runs: spotinit --check.
//
// [Run] looks at what a spotinit started with the same options and
// environment would rely on, and returns a [Report]:
//
//   - the role: PID 1, a child subreaper (PR_SET_CHILD_SUBREAPER is
//     probed), or neither, and then why orphans will not be reaped;
//   - the platform (ECS on EC2, Fargate, Kubernetes, plain Docker or
//     Podman, none) from the signals each one leaves in a container, and
//     its stop-timeout rule, with --stop-timeout and --kill-margin checked
//     against it and against Spot's two minutes;
//   - IMDS: the endpoint and mode, the token request (a request that
//     connects and then hangs is the hop-limit trap), each watched path's
//     status and round-trip time, a notice already active;
//   - the hooks and the child: each program, its #! interpreter or ELF
//     loader, present and executable; the --notice-file directory writable;
//     the command found as the supervisor will look it up;
//   - every problem and warning as one [Finding] with its fix.
//
// The report renders as one screen of text or as one JSON document.
//
// The package owns the diagnosis only. It must never start a process, send
// a signal or write a file: it reads files, asks IMDS over HTTP (bounded to
// a few seconds in all, however IMDS behaves) and sets
// PR_SET_CHILD_SUBREAPER on its own process to see that it can (and clears
// it again). Its IMDS client is plain net/http rather than the SDK, because
// a diagnosis needs the status of each step on the wire, which the SDK
// hides behind retries.
package preflight
