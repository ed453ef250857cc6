package footprint

import (
	"os"
	"strconv"
	"strings"
	"testing"
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
	before := rssKiB(t)
	n, err := Trim()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no read-only mapping of the executable was advised")
	}
	after := rssKiB(t)
	if after >= before {
		t.Errorf("RSS %d KiB after Trim, %d before: nothing given back", after, before)
	}
	// Code and read-only data still work after being dropped.
	if got := strings.ToUpper(strconv.Itoa(12345) + "abc"); got != "12345ABC" {
		t.Fatalf("got %q", got)
	}
	t.Logf("advised %d KiB; RSS %d -> %d KiB", n/1024, before, after)
}
