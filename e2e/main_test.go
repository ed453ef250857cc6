package e2e

import (
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// enableVar turns the suite on; .ci/run sets it, so CI never passes without
// the suite having run.
const enableVar = "SPOTINIT_E2E"

// enabled reports whether enableVar asks for the suite: "1", as test.sh
// checks it.
func enabled() bool { return os.Getenv(enableVar) == "1" }

// tally counts the results of the tests that called begin, for the summary
// line that TestMain prints.
type tally struct {
	mu                      sync.Mutex
	passed, failed, skipped []string
}

func (ta *tally) record(t *testing.T) {
	t.Cleanup(func() {
		ta.mu.Lock()
		defer ta.mu.Unlock()
		switch {
		case t.Failed():
			ta.failed = append(ta.failed, t.Name())
		case t.Skipped():
			ta.skipped = append(ta.skipped, t.Name())
		default:
			ta.passed = append(ta.passed, t.Name())
		}
	})
}

func (ta *tally) summary() string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	s := fmt.Sprintf("e2e: %d passed, %d failed, %d skipped", len(ta.passed), len(ta.failed), len(ta.skipped))
	if len(ta.failed) > 0 {
		sort.Strings(ta.failed)
		s += "\ne2e: failed: " + strings.Join(ta.failed, " ")
	}
	return s
}

// results is the one tally of this test binary.
var results tally

// shared is the environment every test uses, set up by the first test that
// needs each part and torn down by TestMain.
var shared = &suite{}

func TestMain(m *testing.M) {
	if !enabled() {
		fmt.Printf("e2e: skipped: %s is not 1; the end-to-end tests in a real container engine "+
			"need root, dockerd and runc (run them with %s=1 go test -v ./e2e/, as .ci/run does)\n", enableVar, enableVar)
		os.Exit(m.Run()) // each test skips with the same reason
	}
	// An interrupt (Ctrl-C, or the CI runner's TERM) must not leave a dockerd
	// or a runc container behind: tear down, then die as asked.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "e2e: %v: cleaning up\n", sig)
			shared.teardown()
			os.Exit(1)
		case <-done:
		}
	}()
	code := m.Run()
	signal.Stop(sigs)
	close(done)
	if err := shared.teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cleanup: %v\n", err)
		code = 1
	}
	fmt.Println(results.summary())
	os.Exit(code)
}

// begin starts every test: it skips when the suite is off and counts the
// result otherwise.
func begin(t *testing.T) {
	t.Helper()
	if !enabled() {
		t.Skipf("%s is not 1: end-to-end tests in a real container engine are off", enableVar)
	}
	results.record(t)
}
