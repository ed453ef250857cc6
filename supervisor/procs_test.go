package supervisor

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
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

// TestSignalHandled reads a real process's masks: a shell that traps USR1,
// ignores USR2 and leaves HUP at its default, once it says it has set them.
func TestSignalHandled(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	cmd := exec.Command("sh", "-c", `trap "exit 0" USR1; trap "" USR2; touch "$1"; while :; do sleep 0.05; done`, "sh", ready)
	if err := cmd.Start(); err != nil {
		t.Fatalf("sh: %v", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) { // polling a condition
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the shell never set its traps")
		}
	}
	pid := cmd.Process.Pid
	for sig, want := range map[syscall.Signal]bool{syscall.SIGUSR1: true, syscall.SIGUSR2: true, syscall.SIGHUP: false} {
		if handled, ok := signalHandled(pid, sig); !ok || handled != want {
			t.Errorf("signalHandled(%v) = %v, %v; want %v, true", sig, handled, ok, want)
		}
	}
	if _, ok := signalHandled(1<<30, syscall.SIGUSR1); ok {
		t.Error("signalHandled of no such process says it can tell")
	}
}
