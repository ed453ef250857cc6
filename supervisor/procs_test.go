package supervisor

import (
	"os"
	"testing"
)

func TestProcState(t *testing.T) {
	// The test is running, or sleeping between its threads' work.
	if st := procState(os.Getpid()); st != "R" && st != "S" {
		t.Errorf("procState(self) = %q, want R or S", st)
	}
	if st := procState(1 << 30); st != "" {
		t.Errorf("procState(no such pid) = %q, want empty", st)
	}
	for state, want := range map[string]string{"D": "D (disk sleep)", "": "gone", "?": "?"} {
		if got := stateName(state); got != want {
			t.Errorf("stateName(%q) = %q, want %q", state, got, want)
		}
	}
}
