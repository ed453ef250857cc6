package interruption

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/smithy-go/logging"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/sys/unix"
)

const (
	// DefaultEndpoint is the SDK's IPv4 IMDS endpoint, used when neither
	// Config.Endpoint nor EndpointEnv is set.
	DefaultEndpoint = "http://169.254.169.254"
	// EndpointEnv is the AWS SDKs' variable naming the IMDS endpoint. The
	// watcher honours it, as the SDK would, when Config.Endpoint is empty.
	EndpointEnv = "AWS_EC2_METADATA_SERVICE_ENDPOINT"

	// maxBody bounds what one IMDS answer may hold. The notices are a few
	// hundred bytes; the SDK reads whole bodies into memory, so a runaway
	// answer is cut here, in the transport.
	maxBody = 64 << 10
)

// EndpointSource says which setting an IMDS endpoint came from.
type EndpointSource int

const (
	// EndpointDefault: neither was set; the endpoint is DefaultEndpoint.
	EndpointDefault EndpointSource = iota
	// EndpointConfigured: the caller's value (Config.Endpoint; spotinit's
	// --imds-endpoint option).
	EndpointConfigured
	// EndpointFromEnv: the EndpointEnv variable.
	EndpointFromEnv
)

// String names the source: "default", "configured", or EndpointEnv.
func (s EndpointSource) String() string {
	switch s {
	case EndpointConfigured:
		return "configured"
	case EndpointFromEnv:
		return EndpointEnv
	}
	return "default"
}

// ResolveEndpoint returns the IMDS endpoint a watcher uses and where it came
// from: configured when it is not empty, else EndpointEnv as getenv reads
// it (empty means not set; nil getenv means os.Getenv), else
// DefaultEndpoint. When the value found fails CheckEndpoint, the error says
// why, and endpoint and source are still the refused value and the setting
// that holds it, so a caller can name both as the user wrote them.
func ResolveEndpoint(configured string, getenv func(string) string) (endpoint string, source EndpointSource, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	endpoint, source = configured, EndpointConfigured
	if endpoint == "" {
		endpoint, source = getenv(EndpointEnv), EndpointFromEnv
	}
	if endpoint == "" {
		return DefaultEndpoint, EndpointDefault, nil
	}
	return endpoint, source, CheckEndpoint(endpoint)
}

// CheckEndpoint reports whether ep can serve as an IMDS endpoint: an
// absolute http URL with a host. IMDS speaks plain http on a link-local
// address; anything else is a mistake.
func CheckEndpoint(ep string) error {
	u, err := url.Parse(ep)
	if err != nil {
		return fmt.Errorf("imds endpoint %q: %w", ep, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("imds endpoint %q: not an http url", ep)
	}
	return nil
}

// newClient returns the one IMDS client of a watcher and the HTTP client
// under it, whose idle connection the watcher closes when it returns.
func newClient(endpoint string, base *http.Client) (*imds.Client, *http.Client) {
	hc := &http.Client{}
	var rt http.RoundTripper
	if base != nil {
		*hc = *base
		rt = base.Transport
	}
	if rt == nil {
		rt = &http.Transport{
			// IMDS is link-local: a proxy from HTTP_PROXY can only break it.
			Proxy: nil,
			DialContext: (&net.Dialer{
				Timeout:   time.Second,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			// Requests go one at a time, so one connection is reused.
			MaxIdleConns:        1,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
	}
	hc.Transport = &tracingTransport{base: rt}
	client := imds.New(imds.Options{
		Endpoint:                 endpoint,
		HTTPClient:               hc,
		ClientEnableState:        imds.ClientEnabled, // the mode decides, not the SDK's reading of os.Getenv
		EnableFallback:           aws.FalseTernary,   // IMDSv2 only
		Retryer:                  newRetryer(),
		DisableDefaultMaxBackoff: true, // no 1 s cap wrapped around newRetryer's own pause
		Logger:                   logging.Nop{},
	})
	return client, hc
}

// newRetryer is the SDK retryer of the watcher's client. Within one call
// it retries at once, and once, exactly two things:
//
//   - a 401 to the GET: the SDK's token provider has already dropped the
//     token it sent (it marks the 401 retryable), so the retry asks for a
//     new token and reads again, within the same poll;
//   - a connection that broke before any answer (a reset, a reused
//     keep-alive connection the far end had closed, a refused connect).
//
// A status IMDS chose to send (429, 5xx, 403, ...) is not retried here:
// retrying a throttled or failing IMDS at once only adds to its load. The
// call fails, and the watcher backs off before its next poll.
func newRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 2
		o.Retryables = []retry.IsErrorRetryable{
			retry.NoRetryCanceledError{},     // the poll's own deadline ended it
			retry.RetryableError{},           // the token provider's mark on a 401
			retry.RetryableConnectionError{}, // no answer came back at all
		}
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		// The default token bucket empties for good after a run of
		// failures; IMDS polling must keep trying.
		o.RateLimiter = ratelimit.None
	})
}

// callTrace records what the transport saw during one IMDS call (the token
// PUT, the GET and the SDK's retries), so that failures are classified by
// what happened on the wire: the SDK hides the status of a failed token
// request behind an error type that does not unwrap.
type callTrace struct {
	mu       sync.Mutex
	requests int
	method   string // of the last request
	gotConn  bool   // the last request got a connection
	status   int    // of the last response; 0 when none
	err      error  // the transport error of the last request
	tooLarge bool
	whole    bool // the last response's body was read to its end
}

type traceKey struct{}

func withTrace(ctx context.Context, tr *callTrace) context.Context {
	return context.WithValue(ctx, traceKey{}, tr)
}

// tracingTransport fills the callTrace found in a request's context and
// bounds response bodies to maxBody.
type tracingTransport struct {
	base http.RoundTripper
}

func (t *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tr, _ := req.Context().Value(traceKey{}).(*callTrace)
	if tr == nil {
		return t.base.RoundTrip(req)
	}
	tr.mu.Lock()
	tr.requests++
	tr.method, tr.gotConn, tr.status, tr.err = req.Method, false, 0, nil
	tr.mu.Unlock()
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) {
			tr.mu.Lock()
			tr.gotConn = true
			tr.mu.Unlock()
		},
	})
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if err != nil {
		tr.err = err
		return resp, err
	}
	tr.status = resp.StatusCode
	tr.whole = false
	resp.Body = &limitedBody{rc: resp.Body, left: maxBody, tr: tr}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// wrapped transport.
func (t *tracingTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

var errBodyTooLarge = fmt.Errorf("imds response larger than %d bytes", maxBody)

// limitedBody fails a read past maxBody instead of truncating, so an
// oversized answer is never parsed as if it were whole.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	tr   *callTrace
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.tr.mu.Lock()
		b.tr.tooLarge = true
		b.tr.mu.Unlock()
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		n = int(b.left)
		b.left = 0
		b.tr.mu.Lock()
		b.tr.tooLarge = true
		b.tr.mu.Unlock()
		return n, errBodyTooLarge
	}
	b.left -= int64(n)
	if err == io.EOF {
		b.tr.mu.Lock()
		b.tr.whole = true
		b.tr.mu.Unlock()
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// failure classes: each has its own rate limit for warnings.
const (
	failUnreachable   = "unreachable"      // nothing answers at the endpoint
	failForbidden     = "forbidden"        // 403: IMDS turned off for the instance
	failTokenTimeout  = "token-timeout"    // connected, but the token PUT got no answer
	failTokenRejected = "token-rejected"   // the token PUT got another error status
	failTimeout       = "timeout"          // a GET got no answer, or no whole answer, in time
	failReset         = "connection-reset" // connected, and the connection broke before a whole answer
	failUnauthorized  = "unauthorized"     // 401 even with a fresh token
	failThrottled     = "throttled"        // 429
	failServer        = "server-error"     // 5xx
	failStatus        = "http-status"      // another unexpected status
	failTooLarge      = "response-too-large"
	failUnusable      = "unusable-answer" // a whole 2xx answer the SDK refused
	failOther         = "other"
)

// fetchError is a failed IMDS call, classified.
type fetchError struct {
	class   string
	status  int           // the last HTTP status; 0 when none
	netErr  error         // the transport's error of the last request, if any
	timeout time.Duration // the bound the call had
	err     error         // the SDK's error, with its whole chain
}

// Error is the full story, the SDK's nested chain included: for debug
// lines.
func (e *fetchError) Error() string {
	if e.status != 0 {
		return fmt.Sprintf("imds %s (http %d): %v", e.class, e.status, e.err)
	}
	return fmt.Sprintf("imds %s: %v", e.class, e.err)
}

func (e *fetchError) Unwrap() error { return e.err }

// short names the class and what was seen on the wire, in a few words:
// "throttled: http 429", "unreachable: connection refused (ECONNREFUSED)",
// "token-timeout: no answer within 1s". This is what warnings carry; the
// chain goes to debug lines.
func (e *fetchError) short() string {
	return e.class + ": " + e.detail()
}

func (e *fetchError) detail() string {
	if e.class == failTooLarge {
		return fmt.Sprintf("answer larger than %d bytes", maxBody)
	}
	switch {
	case e.status >= 300:
		return fmt.Sprintf("http %d", e.status)
	case e.class == failUnusable:
		return fmt.Sprintf("http %d, but %s", e.status, truncate(innermost(e.err).Error(), 120))
	case e.status != 0 && e.class == failTimeout:
		return fmt.Sprintf("http %d, body not whole within %v", e.status, e.timeout)
	case e.status != 0:
		return fmt.Sprintf("http %d, body cut off", e.status)
	}
	var dnsErr *net.DNSError
	var errno syscall.Errno
	switch err := e.netErr; {
	case err == nil:
	case errors.As(err, &dnsErr):
		return "lookup " + dnsErr.Name + ": " + dnsErr.Err
	case errors.As(err, &errno):
		if name := unix.ErrnoName(errno); name != "" {
			return fmt.Sprintf("%v (%s)", errno, name)
		}
		return errno.Error()
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	case isTimeout(err):
		if e.class == failUnreachable {
			return fmt.Sprintf("no connection within %v", e.timeout)
		}
		return fmt.Sprintf("no answer within %v", e.timeout)
	}
	// Nothing on the wire to name: the innermost cause, bounded.
	return truncate(innermost(e.err).Error(), 120)
}

// innermost is the last error of err's chain; a stand-in when err is nil.
func innermost(err error) error {
	if err == nil {
		return errors.New("unknown error")
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(err) {
		err = u
	}
	return err
}

// hint says what to change for a failure class, or "". Hints are short:
// they end a log line.
func hint(class string) string {
	switch class {
	case failForbidden:
		return "enable IMDS (aws ec2 modify-instance-metadata-options --http-endpoint enabled) or set --imds off"
	case failTokenTimeout:
		return "behind a Docker bridge, set the instance's HttpPutResponseHopLimit to 2 (or use host or awsvpc networking)"
	case failUnreachable:
		return "no IMDS here (not on EC2?): set --imds off, or --imds-endpoint"
	case failTokenRejected:
		return "the endpoint does not serve IMDSv2 tokens"
	case failUnusable:
		return "the endpoint does not answer as IMDS does: check --imds-endpoint"
	case failThrottled:
		return "every process polling IMDS shares its rate limit: raise --imds-poll-interval"
	}
	return ""
}

// classify turns an error of GetMetadata into a *fetchError, using what the
// transport saw.
func classify(err error, tr *callTrace, timeout time.Duration) *fetchError {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	fe := &fetchError{class: failOther, status: tr.status, netErr: tr.err, timeout: timeout, err: err}
	switch {
	case tr.tooLarge:
		fe.class = failTooLarge
	case tr.status >= 200 && tr.status < 300 && tr.whole:
		// A whole answer the SDK could not use: a token without its
		// lifetime header, say. Nothing on the wire went wrong.
		fe.class = failUnusable
	case tr.status >= 200 && tr.status < 300:
		// The answer began, but its body never came whole: it was too
		// slow (a drip), or the connection broke.
		fe.class = failReset
		if isTimeout(err) {
			fe.class = failTimeout
		}
	case tr.status == http.StatusForbidden:
		fe.class = failForbidden
	case tr.status == http.StatusTooManyRequests:
		fe.class = failThrottled
	case tr.status >= 500:
		fe.class = failServer
	case tr.status != 0 && tr.method == http.MethodPut:
		// 400, 404, 405: the endpoint does not do IMDSv2.
		fe.class = failTokenRejected
	case tr.status == http.StatusUnauthorized:
		fe.class = failUnauthorized
	case tr.status != 0:
		fe.class = failStatus
	case tr.requests == 0:
		// The SDK failed before sending anything (e.g. the context ended).
		fe.class = failOther
	case !tr.gotConn || isDialError(tr.err):
		// No connection: refused, no route, DNS, or a connect that timed
		// out (a link-local address that nothing answers).
		fe.class = failUnreachable
	case isReset(tr.err):
		// The far end closed or reset the connection without answering.
		fe.class = failReset
	case tr.method == http.MethodPut:
		// Connected, sent the PUT, no answer: the answer was dropped on
		// the way back, as with a hop limit of 1 behind a Docker bridge.
		fe.class = failTokenTimeout
	default:
		fe.class = failTimeout
	}
	return fe
}

func lastMethod(tr *callTrace) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.method
}

func isTimeout(err error) bool {
	var to interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &to) && to.Timeout())
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func isDialError(err error) bool {
	if err == nil {
		return false
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	return errors.As(err, &dnsErr) ||
		(errors.As(err, &opErr) && opErr.Op == "dial") ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH)
}

// isNotFound reports whether err is IMDS answering 404 to the GET: for the
// notice paths, "nothing yet". It looks at the HTTP status only.
func isNotFound(err error) bool {
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

// get fetches one metadata path within timeout, which bounds the whole
// call: the token request, the GET, and the one retry newRetryer allows (a
// 401 gets a new token and a second GET here, not at the next poll). found
// is false when IMDS answers 404. A failure is a *fetchError, or ctx's
// error when ctx ended.
func get(ctx context.Context, client *imds.Client, path string, timeout time.Duration) (body []byte, found bool, err error) {
	tr := &callTrace{}
	rctx, cancel := context.WithTimeout(withTrace(ctx, tr), timeout)
	defer cancel()
	out, err := client.GetMetadata(rctx, &imds.GetMetadataInput{Path: path})
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		if isNotFound(err) && lastMethod(tr) == http.MethodGet {
			return nil, false, nil
		}
		return nil, false, classify(err, tr, timeout)
	}
	defer out.Content.Close()
	// The SDK has already read the body (bounded by limitedBody).
	body, err = io.ReadAll(out.Content)
	if err != nil {
		return nil, false, classify(err, tr, timeout)
	}
	return body, true, nil
}
