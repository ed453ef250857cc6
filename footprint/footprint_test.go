package footprint

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func rssKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestTrimShrinksAndKeepsWorking: after Trim the resident set is smaller,
// and the process keeps running code and reading its read-only data (which
// fault back in).
func TestTrimShrinksAndKeepsWorking(t *testing.T) {
	tr, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.spans) == 0 {
		t.Fatal("no read-only mapping of the executable found")
	}
	before := rssKiB(t)
	n := tr.Trim()
	after := rssKiB(t)
	if n == 0 || after >= before {
		t.Errorf("advised %d bytes; RSS %d KiB after Trim, %d before: nothing given back", n, after, before)
	}
	// Code and read-only data still work after being dropped.
	if got := strings.ToUpper(strconv.Itoa(12345) + "abc"); got != "12345ABC" {
		t.Fatalf("got %q", got)
	}
	t.Logf("advised %d KiB; RSS %d -> %d KiB", n/1024, before, after)
}

// TestAfterEachGC: a collection faults pages back in; with AfterEachGC they
// are dropped again once it is over.
func TestAfterEachGC(t *testing.T) {
	tr, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr.Trim()
	tr.AfterEachGC(ctx)
	low := rssKiB(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC() // the cleanup runs after the collection, on its own goroutine
		if rssKiB(t) <= low+64 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("RSS %d KiB after collections, %d before: pages not dropped after GC", rssKiB(t), low)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}
