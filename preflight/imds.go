package preflight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spotinit/spotinit/interruption"
)

const (
	defaultEndpoint = "http://169.254.169.254"
	endpointEnv     = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
	tokenPath       = "/latest/api/token"
	tokenTTLHeader  = "X-aws-ec2-metadata-token-ttl-seconds"
	metaPrefix      = "/latest/meta-data/"
	// maxBody bounds what the check reads of one answer (the watcher's
	// limit too); the notices are a few hundred bytes.
	maxBody = 64 << 10
)

// The paths of the notice kinds, relative to /latest/meta-data/, in the
// order the watcher polls them.
var kindPaths = []struct {
	kind interruption.Kind
	path string
}{
	{interruption.Spot, "spot/instance-action"},
	{interruption.ASG, "autoscaling/target-lifecycle-state"},
	{interruption.Rebalance, "events/recommendations/rebalance"},
	{interruption.Scheduled, "events/maintenance/scheduled"},
}

// Identity paths read beside the notice paths: instance-id answers on
// every EC2 instance (a 404 there means the endpoint is not IMDS), and
// instance-life-cycle says whether the instance is Spot.
const (
	pathInstanceID = "instance-id"
	pathLifeCycle  = "instance-life-cycle"
)

// IMDSReport is what the check learnt about the instance metadata service.
type IMDSReport struct {
	// Mode is --imds: auto, on or off.
	Mode     string `json:"mode"`
	Endpoint string `json:"endpoint,omitempty"`
	// Kinds are the notice kinds watched (--notices).
	Kinds []string `json:"kinds"`
	// PollInterval is --imds-poll-interval.
	PollInterval Duration `json:"poll_interval,omitempty"`
	// Probed is true when the check asked IMDS; Decision says in words
	// what a run would do with IMDS, and why.
	Probed   bool   `json:"probed"`
	Decision string `json:"decision"`
	// Token is the IMDSv2 token request; nil when not probed.
	Token *Probe `json:"token,omitempty"`
	// Paths are the reads done with the token: each watched notice path,
	// then instance-id and instance-life-cycle.
	Paths      []PathProbe `json:"paths,omitempty"`
	InstanceID string      `json:"instance_id,omitempty"`
	// LifeCycle is "spot" or "on-demand" when IMDS said so.
	LifeCycle string `json:"life_cycle,omitempty"`
}

// Probe is one HTTP request to IMDS.
type Probe struct {
	// Status is the HTTP status; 0 when no answer came.
	Status int `json:"status"`
	// RTT is the time from sending the request to the end of the answer,
	// or to giving up.
	RTT Duration `json:"rtt"`
	// Connected is true when a TCP connection was made.
	Connected bool `json:"connected"`
	// Error says what went wrong on the wire; "" when an answer came.
	Error string `json:"error,omitempty"`

	body []byte
	ttl  string // the X-aws-ec2-metadata-token-ttl-seconds header of the answer
	hung bool   // connected, sent, and no answer in time
}

// PathProbe is the read of one metadata path.
type PathProbe struct {
	Path string `json:"path"`
	Probe
	// Meaning says what the answer means ("no notice", "InService", ...).
	Meaning string `json:"meaning"`
}

func checkIMDS(ctx context.Context, cfg *Config, r *Report) IMDSReport {
	ir := IMDSReport{Mode: cfg.IMDS.String(), PollInterval: Duration(cfg.PollInterval)}
	for _, kp := range kindPaths {
		if hasKind(cfg.Kinds, kp.kind) {
			ir.Kinds = append(ir.Kinds, string(kp.kind))
		}
	}
	if ir.Kinds == nil {
		ir.Kinds = []string{}
	}
	// The decisions below are the watcher's (interruption.Watch), in its
	// order.
	switch {
	case cfg.Simulated:
		ir.Decision = "--simulate-notice: a local simulator stands in for IMDS; the instance's is not probed"
		r.add(Warning, "imds", "--simulate-notice is set: real interruption notices will not be seen",
			"remove --simulate-notice (SPOTINIT_SIMULATE_NOTICE) outside rehearsals")
		return ir
	case cfg.IMDS == interruption.Off:
		ir.Decision = "off (--imds off): notices are not watched; only the stop signal starts the stop"
		return ir
	case len(ir.Kinds) == 0:
		ir.Decision = "not watched: --notices names no kind"
		return ir
	}
	if cfg.IMDS == interruption.Auto {
		if env := cfg.getenv("AWS_EXECUTION_ENV"); strings.HasPrefix(env, "AWS_ECS_FARGATE") {
			ir.Decision = "auto, skipped: Fargate has no IMDS notices; Fargate Spot's two-minute warning is the SIGTERM"
			return ir
		}
		if strings.EqualFold(strings.TrimSpace(cfg.getenv("AWS_EC2_METADATA_DISABLED")), "true") {
			ir.Decision = "auto, skipped: AWS_EC2_METADATA_DISABLED=true (--imds on watches anyway)"
			return ir
		}
	}
	ep, from := cfg.Endpoint, "--imds-endpoint"
	if ep == "" {
		ep, from = cfg.getenv(endpointEnv), endpointEnv
	}
	if ep == "" {
		ep, from = defaultEndpoint, ""
	}
	ir.Endpoint = strings.TrimRight(ep, "/")
	if err := interruption.CheckEndpoint(ep); err != nil {
		ir.Endpoint = ep
		ir.Decision = "not watched: the endpoint is not an http URL"
		r.add(Problem, "imds", fmt.Sprintf("%s %q is not an http URL: IMDS would not be watched", from, ep),
			"set it to http://169.254.169.254 (or unset it for the default)")
		return ir
	}
	ir.Probed = true
	probeIMDS(ctx, cfg, r, &ir)
	return ir
}

func hasKind(ks []interruption.Kind, k interruption.Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// client is the HTTP client of one probe.
type client struct {
	hc      *http.Client
	base    string
	timeout time.Duration
}

func newClient(cfg *Config, base string) (*client, func()) {
	hc := cfg.HTTPClient
	closeIdle := func() {}
	if hc == nil {
		tr := &http.Transport{
			Proxy: nil, // IMDS is link-local: a proxy from HTTP_PROXY can only break it
			DialContext: (&net.Dialer{
				Timeout: watcherRequestTimeout, // the watcher's dial bound
			}).DialContext,
			DisableCompression:  true,
			MaxIdleConnsPerHost: len(kindPaths) + 2, // the reads go side by side
		}
		hc = &http.Client{Transport: tr}
		closeIdle = tr.CloseIdleConnections
	}
	return &client{hc: hc, base: base, timeout: cfg.probeTimeout}, closeIdle
}

// do sends one request and reads the answer within the probe timeout.
func (c *client) do(ctx context.Context, method, path string, hdr map[string]string) Probe {
	var p Probe
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var mu sync.Mutex // the trace's callbacks may run on the transport's goroutines
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { mu.Lock(); p.Connected = true; mu.Unlock() },
	})
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		p.Error = err.Error()
		return p
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	answered := err == nil // the status line and headers came
	if answered {
		p.Status = resp.StatusCode
		p.ttl = resp.Header.Get(tokenTTLHeader)
		p.body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
	}
	p.RTT = Duration(roundRTT(time.Since(start)))
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		p.Status = 0
		p.body = nil
		p.Error = wireError(err, p.Connected, c.timeout)
		if answered {
			p.Error = "the answer was cut short: " + p.Error
			if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
				p.Error = fmt.Sprintf("the answer began but did not end within %s", c.timeout)
			}
		}
		// Connected, request sent, not a byte of answer in time: what a
		// dropped answer looks like from here.
		p.hung = !answered && p.Connected && (errors.Is(err, context.DeadlineExceeded) || isTimeout(err)) &&
			!errors.Is(ctx.Err(), context.Canceled)
	}
	return p
}

// wireError says in a few words what happened to a request that got no
// (complete) answer.
func wireError(err error, connected bool, timeout time.Duration) string {
	timedOut := errors.Is(err, context.DeadlineExceeded) || isTimeout(err)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to the endpoint"
	case timedOut && !connected:
		return fmt.Sprintf("could not connect within %s", min(timeout, watcherRequestTimeout))
	case timedOut:
		return fmt.Sprintf("connected, but no answer within %s", timeout)
	case errors.Is(err, context.Canceled):
		return "not finished: the check was interrupted"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "name lookup failed: " + dnsErr.Err
	}
	if connected {
		return "connection closed without an answer"
	}
	return "could not connect: " + err.Error()
}

// roundRTT keeps three significant digits or so: 412µs, 3.21ms, 1.2s.
func roundRTT(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// probeIMDS asks for a token, then reads every path side by side with it.
func probeIMDS(ctx context.Context, cfg *Config, r *Report, ir *IMDSReport) {
	c, closeIdle := newClient(cfg, ir.Endpoint)
	defer closeIdle()
	tok := c.do(ctx, http.MethodPut, tokenPath, map[string]string{
		tokenTTLHeader: "60",
	})
	ir.Token = &tok
	if !tokenOK(cfg, r, ir, &tok) {
		return
	}
	token := strings.TrimSpace(string(tok.body))
	tok.body = nil // never kept, never printed

	var paths []string
	for _, kp := range kindPaths {
		if hasKind(cfg.Kinds, kp.kind) {
			paths = append(paths, kp.path)
		}
	}
	paths = append(paths, pathInstanceID, pathLifeCycle)
	ir.Paths = make([]PathProbe, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Go(func() {
			p := c.do(ctx, http.MethodGet, metaPrefix+path, map[string]string{"X-aws-ec2-metadata-token": token})
			ir.Paths[i] = PathProbe{Path: path, Probe: p}
		})
	}
	wg.Wait()
	faults := &readFaults{}
	for i := range ir.Paths {
		readPath(cfg, r, ir, &ir.Paths[i], faults)
	}
	faults.report(r, ir.Endpoint)
	ir.Decision = "watched: the token request and the reads answer"
	if ir.Mode == interruption.Auto.String() {
		ir.Decision = "auto, watched: the token request and the reads answer"
	}
	failed := 0
	for _, p := range ir.Paths {
		if p.Status != http.StatusOK && p.Status != http.StatusNotFound {
			failed++
		}
	}
	switch {
	case failed == len(ir.Paths) && failed > 0:
		ir.Decision = "watched, but every read fails (see the problems)"
	case failed > 0:
		ir.Decision = "watched, but some reads fail (see the problems)"
	}
}

// tokenOK judges the token request; it reports whether the reads can go
// ahead, having added a finding and ir.Decision when not.
func tokenOK(cfg *Config, r *Report, ir *IMDSReport, tok *Probe) bool {
	auto := cfg.IMDS == interruption.Auto
	ep := ir.Endpoint
	// offHere grades a failure that, under auto, means "no IMDS here":
	// the watcher then skips it, which is what --imds auto asks for off
	// EC2, and a problem only when IMDS was asked for.
	offHere := func(level Severity, msg, fix, decision string) bool {
		if !auto {
			level = Problem
		}
		ir.Decision = decision
		if level != "" {
			r.add(level, "imds", msg, fix)
		}
		return false
	}
	switch {
	case tok.Status == http.StatusOK && len(strings.TrimSpace(string(tok.body))) == 0:
		r.add(Problem, "imds", fmt.Sprintf("%s answered the token request with an empty token", ep),
			"point --imds-endpoint at the instance's IMDS (http://169.254.169.254)")
		ir.Decision = "not usable: no token"
		return false
	case tok.Status == http.StatusOK && !validTTL(tok.ttl):
		// The SDK reads the token's lifetime from this header and refuses
		// a token without it: the watcher would ask for a token at every
		// poll and never read a path.
		r.add(Problem, "imds", fmt.Sprintf("%s answered the token request without a valid %s header (%q): the watcher cannot use the token, and every read would fail", ep, tokenTTLHeader, tok.ttl),
			"point --imds-endpoint at the instance's IMDS (http://169.254.169.254), or at a fake that answers as IMDS does")
		ir.Decision = "not usable: the token answer has no lifetime"
		return false
	case tok.Status == http.StatusOK:
		slow(r, "the token request", tok)
		return true
	case tok.hung:
		// The hop-limit trap: the TCP handshake goes through, but IMDS
		// sends the PUT's answer with an IP TTL of HttpPutResponseHopLimit
		// (1 by default), and the extra hop into a container's network
		// namespace drops it. The watcher's auto probe takes this for "no
		// IMDS" and never watches: always a problem.
		ir.Decision = "not watched: the token request hangs (hop limit)"
		r.add(Problem, "imds",
			fmt.Sprintf("the IMDSv2 token request (PUT %s%s) connected but got no answer within %s: the instance's HttpPutResponseHopLimit (1 by default) drops the answer before it reaches this container", ep, tokenPath, cfg.probeTimeout),
			hopLimitFix(r.Platform.Name))
		return false
	case tok.Status == 0 && tok.Connected:
		r.add(Problem, "imds", fmt.Sprintf("the IMDSv2 token request (PUT %s%s) failed: %s", ep, tokenPath, tok.Error),
			"find what disturbs IMDS's answers here (a proxy, a firewall, an overloaded instance)")
		ir.Decision = "not usable: the token request fails"
		return false
	case tok.Status == 0:
		level := Severity("") // off EC2, nothing answers: auto skips IMDS quietly
		msg := fmt.Sprintf("nothing answers at %s (%s)", ep, tok.Error)
		fix := "set --imds off where there is no IMDS, or --imds-endpoint to one"
		if r.Platform.Name == PlatformECS {
			level = Warning
			msg += ": on ECS, ECS_AWSVPC_BLOCK_IMDS=true or a DOCKER-USER iptables rule blocks IMDS for tasks, and notices are then never seen"
			fix = "unblock 169.254.169.254 for this task (ECS_AWSVPC_BLOCK_IMDS, DOCKER-USER rules), or set --imds off to rely on ECS's SIGTERM alone"
		}
		return offHere(level, msg, fix, "not watched: nothing answers (not on EC2?)")
	case tok.Status == http.StatusForbidden:
		return offHere(Warning,
			fmt.Sprintf("%s refuses the token request (403): the instance's metadata endpoint is turned off, and interruption notices cannot be seen", ep),
			"aws ec2 modify-instance-metadata-options --instance-id ID --http-endpoint enabled; or --imds off to say notices are not needed",
			"not watched: IMDS is turned off for this instance (403)")
	case tok.Status == http.StatusTooManyRequests || tok.Status >= 500:
		r.add(Warning, "imds",
			fmt.Sprintf("%s answered the token request with %d (throttled or failing): the watcher retries with backoff", ep, tok.Status),
			"run the check again; if it persists, raise --imds-poll-interval (every process on the instance shares IMDS's rate limit)")
		ir.Decision = fmt.Sprintf("watched, but the token request fails now (%d)", tok.Status)
		return false
	default:
		// 400, 401, 404, 405: whatever answers does not do IMDSv2.
		r.add(Problem, "imds",
			fmt.Sprintf("%s answered the IMDSv2 token request (PUT %s) with %d: it does not serve IMDSv2 tokens, and every read would fail", ep, tokenPath, tok.Status),
			"point --imds-endpoint at the instance's IMDS (http://169.254.169.254), or set --imds off")
		ir.Decision = fmt.Sprintf("not usable: the token request is refused (%d)", tok.Status)
		return false
	}
}

// validTTL reports whether a token answer's lifetime header is what the
// SDK accepts: a whole number of seconds.
func validTTL(v string) bool {
	_, err := strconv.ParseInt(v, 10, 64)
	return err == nil
}

// hopLimitFix is the one-line fix for the hop-limit trap where the
// container runs.
func hopLimitFix(platform string) string {
	const cmd = "aws ec2 modify-instance-metadata-options --instance-id ID --http-put-response-hop-limit 2"
	switch platform {
	case PlatformECS:
		return "in bridge network mode set the instance's hop limit to 2 (launch template: MetadataOptions HttpPutResponseHopLimit 2; running instance: " + cmd + "), or use awsvpc or host network mode"
	case PlatformKubernetes:
		return "set HttpPutResponseHopLimit 2 in the node group's launch template (Karpenter: EC2NodeClass spec.metadataOptions.httpPutResponseHopLimit: 2, its default is 1); EKS security guidance keeps 1 so pods cannot reach the node's credentials: to keep it, set --imds off and let aws-node-termination-handler or Karpenter drain the node"
	case PlatformFargate:
		// Fargate has no IMDS: whatever hangs here is not the task's.
		return "Fargate has no IMDS, and Fargate Spot's two-minute warning is the SIGTERM itself: set --imds off (or leave --imds auto, which skips IMDS on Fargate)"
	case PlatformDocker, PlatformPodman:
		return "run the container with --network host, or set the instance's hop limit to 2 (" + cmd + ")"
	default:
		// Where the platform is not known, every way out: the hop limit
		// fixes all of them.
		return "set the instance's hop limit to 2 (" + cmd + "; launch template: MetadataOptions HttpPutResponseHopLimit 2), or give the container the host's network (docker run --network host, ECS host or awsvpc mode, Kubernetes hostNetwork: true); on EKS, where security guidance keeps 1, set --imds off and let aws-node-termination-handler or Karpenter drain the node"
	}
}

// slow grades an answer's round trip against the watcher's limit.
func slow(r *Report, what string, p *Probe) {
	switch rtt := time.Duration(p.RTT); {
	case rtt > watcherRequestTimeout:
		r.add(Problem, "imds",
			fmt.Sprintf("%s took %s, longer than the %s the watcher allows each request: its polls would time out", what, p.RTT, watcherRequestTimeout),
			"find what slows IMDS down here (a proxy, a firewall, throttling by other processes on the instance)")
	case rtt > slowAnswer:
		r.add(Warning, "imds",
			fmt.Sprintf("%s took %s: slow, the watcher allows each request %s", what, p.RTT, watcherRequestTimeout),
			"")
	}
}

// Ways a read can fail; reads that fail the same way make one finding.
const (
	faultHang      = "hang"
	faultToken     = "unauthorized"
	faultThrottled = "throttled"
	faultStatus    = "status"
	faultTooSlow   = "too slow"
	faultSlow      = "slow"
)

// readFaults gathers the reads that failed, by the way they failed.
type readFaults struct {
	order []string
	paths map[string][]string
	first map[string]*PathProbe // the first read of each kind, for its details
	worst map[string]Duration   // the longest round trip of each kind
}

func (f *readFaults) add(kind string, p *PathProbe) {
	if f.paths == nil {
		f.paths, f.first, f.worst = map[string][]string{}, map[string]*PathProbe{}, map[string]Duration{}
	}
	if _, ok := f.paths[kind]; !ok {
		f.order = append(f.order, kind)
		f.first[kind] = p
	}
	f.paths[kind] = append(f.paths[kind], p.Path)
	f.worst[kind] = max(f.worst[kind], p.RTT)
}

// report adds one finding per way of failing, naming every path it hit.
func (f *readFaults) report(r *Report, ep string) {
	for _, kind := range f.order {
		paths, p := strings.Join(f.paths[kind], ", "), f.first[kind]
		switch kind {
		case faultHang:
			r.add(Problem, "imds", fmt.Sprintf("reading %s: %s", paths, p.Error),
				"find what stops IMDS's answers here (a firewall, a proxy, an overloaded instance)")
		case faultToken:
			r.add(Problem, "imds",
				fmt.Sprintf("%s refuses the token it has just issued (401 reading %s): every poll would fail", ep, paths),
				"something between the container and IMDS changes the requests (a proxy?); IMDS also refuses tokens requested through one (X-Forwarded-For)")
		case faultThrottled:
			r.add(Warning, "imds", fmt.Sprintf("reading %s answered %d (throttled or failing): the watcher retries with backoff", paths, p.Status),
				"run the check again; if it persists, raise --imds-poll-interval (every process on the instance shares IMDS's rate limit)")
		case faultStatus:
			r.add(Problem, "imds", fmt.Sprintf("reading %s answered %d", paths, p.Status),
				"point --imds-endpoint at the instance's IMDS (http://169.254.169.254)")
		case faultTooSlow:
			r.add(Problem, "imds",
				fmt.Sprintf("reading %s took up to %s, longer than the %s the watcher allows each request: its polls would time out", paths, f.worst[kind], watcherRequestTimeout),
				"find what slows IMDS down here (a proxy, a firewall, throttling by other processes on the instance)")
		case faultSlow:
			r.add(Warning, "imds", fmt.Sprintf("reading %s took up to %s: slow, the watcher allows each request %s", paths, f.worst[kind], watcherRequestTimeout), "")
		}
	}
}

// readPath judges one read and says what its answer means.
func readPath(cfg *Config, r *Report, ir *IMDSReport, p *PathProbe, faults *readFaults) {
	ep := ir.Endpoint
	body := strings.TrimSpace(string(p.body))
	p.body = nil
	switch {
	case p.Status == 0:
		p.Meaning = "no answer"
		faults.add(faultHang, p)
		return
	case p.Status == http.StatusUnauthorized:
		p.Meaning = "token refused"
		faults.add(faultToken, p)
		return
	case p.Status == http.StatusTooManyRequests || p.Status >= 500:
		p.Meaning = "failing"
		faults.add(faultThrottled, p)
		return
	case p.Status != http.StatusOK && p.Status != http.StatusNotFound:
		p.Meaning = "unexpected answer"
		faults.add(faultStatus, p)
		return
	}
	switch rtt := time.Duration(p.RTT); {
	case rtt > watcherRequestTimeout:
		faults.add(faultTooSlow, p)
	case rtt > slowAnswer:
		faults.add(faultSlow, p)
	}
	found := p.Status == http.StatusOK
	switch p.Path {
	case pathInstanceID:
		if !found {
			p.Meaning = "missing"
			r.add(Problem, "imds",
				fmt.Sprintf("%s answers 404 for meta-data/%s, which every EC2 instance has: it is not an instance metadata service", ep, pathInstanceID),
				"point --imds-endpoint (or AWS_EC2_METADATA_SERVICE_ENDPOINT) at http://169.254.169.254, or unset it")
			return
		}
		ir.InstanceID, p.Meaning = body, body
	case pathLifeCycle:
		p.Meaning = "unknown"
		if found {
			ir.LifeCycle, p.Meaning = body, body
		}
	case "spot/instance-action":
		p.Meaning = "no notice"
		if found {
			p.Meaning = spotNoticeMeaning(cfg, r, body)
		}
	case "autoscaling/target-lifecycle-state":
		p.Meaning = "not in an Auto Scaling group with lifecycle state"
		if found {
			p.Meaning = body
			if body == "Terminated" {
				r.add(Warning, "imds", "the Auto Scaling group is terminating this instance (target-lifecycle-state Terminated): a spotinit starting now acts at once", "")
			}
		}
	case "events/recommendations/rebalance":
		p.Meaning = "no recommendation"
		if found {
			var rb struct {
				NoticeTime string `json:"noticeTime"`
			}
			_ = json.Unmarshal([]byte(body), &rb) // unreadable: shown raw below
			p.Meaning = "rebalance recommended at " + rb.NoticeTime
			if rb.NoticeTime == "" {
				p.Meaning = "rebalance recommended: " + clip(body)
			}
			r.add(Warning, "imds", "a rebalance recommendation is active: a spotinit starting now runs the --on-rebalance hooks at once", "")
		}
	case "events/maintenance/scheduled":
		p.Meaning = "no events"
		if found {
			p.Meaning = scheduledMeaning(body)
		}
	}
}

// spotNoticeMeaning reads an active Spot notice and warns about it.
func spotNoticeMeaning(cfg *Config, r *Report, body string) string {
	var n struct {
		Action string `json:"action"`
		Time   string `json:"time"`
	}
	if err := json.Unmarshal([]byte(body), &n); err != nil || n.Action == "" {
		r.add(Problem, "imds", fmt.Sprintf("spot/instance-action answers 200 with an unreadable notice: %q", clip(body)),
			"point --imds-endpoint at the instance's IMDS (http://169.254.169.254)")
		return "unreadable notice"
	}
	meaning := fmt.Sprintf("notice: %s at %s", n.Action, n.Time)
	t, err := time.Parse(time.RFC3339, n.Time)
	if err != nil {
		return meaning
	}
	now := cfg.now()
	if cfg.StaleAfter > 0 && t.Before(now.Add(-cfg.StaleAfter)) {
		return meaning + fmt.Sprintf(" (stale: more than --stale-after %s ago, ignored)", cfg.StaleAfter)
	}
	if d := t.Sub(now).Round(time.Second); d >= 0 {
		meaning += fmt.Sprintf(" (in %s)", d)
	} else {
		meaning += fmt.Sprintf(" (%s ago)", -d)
	}
	r.add(Warning, "imds", "a Spot interruption notice is active ("+n.Action+" at "+n.Time+"): a spotinit starting now runs the pre-stop hooks at once", "")
	return meaning
}

// scheduledMeaning summarises the scheduled events list.
func scheduledMeaning(body string) string {
	var evs []struct {
		Code      string
		NotBefore string
		State     string
	}
	if err := json.Unmarshal([]byte(body), &evs); err != nil {
		return "unreadable: " + clip(body)
	}
	if len(evs) == 0 {
		return "no events"
	}
	var parts []string
	for _, e := range evs {
		parts = append(parts, fmt.Sprintf("%s from %s (%s)", e.Code, e.NotBefore, e.State))
	}
	return strings.Join(parts, "; ")
}

// clip shortens a body for a message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
