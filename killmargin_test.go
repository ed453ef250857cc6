package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKillMarginZero: with --kill-margin 0 spotinit's SIGKILL and the end
// of its grace used to fall in the same instant, so it sometimes gave up on
// the child before the reaper had reported it ("child did not exit after
// SIGKILL", child=unknown). After its SIGKILL spotinit must wait for the
// report and exit with the child's real status, every time: 200 runs of a
// child that ignores SIGTERM, each stopped by a SIGTERM once the child is
// ready, must all end with 137 and no ERROR line.
func TestKillMarginZero(t *testing.T) {
	bin := filepath.Join(buildSpotinit(t), "spotinit")
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(dir, "testchild") // this test binary, as the helper child
	if err := os.Symlink(self, child); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		ready := filepath.Join(dir, fmt.Sprintf("ready-%d", i))
		cmd := exec.Command(bin, "--imds", "off", "--stop-timeout", "20ms", "--kill-margin", "0",
			"--", child, "ignore", "TERM", "ready", ready, "hang")
		cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_DISABLED=true")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		if err := awaitFile(ready, exited); err != nil {
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("run %d: %v; spotinit's stderr:\n%s", i, err, stderr.String())
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-exited:
		case <-time.After(waitTimeout):
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("run %d: spotinit did not exit; stderr:\n%s", i, stderr.String())
		}
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		code := ws.ExitStatus()
		if ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		if code != 137 || strings.Contains(stderr.String(), "level=ERROR") {
			t.Fatalf("run %d: exit status %d, want 137 and no ERROR line; stderr:\n%s", i, code, stderr.String())
		}
		if res := checkLogs(t, stderr.String()); res.Reports != 1 {
			t.Fatalf("run %d: %d stop reports; stderr:\n%s", i, res.Reports, stderr.String())
		}
	}
}

// awaitFile waits until name exists, or fails when the process ends first
// or when it takes longer than waitTimeout (which only bounds a failure).
func awaitFile(name string, exited <-chan struct{}) error {
	deadline := time.Now().Add(waitTimeout)
	for {
		if _, err := os.Stat(name); err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("spotinit exited before the child was ready")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the child was not ready after %s", waitTimeout)
		}
		time.Sleep(time.Millisecond) // polling interval, not a wait for state
	}
}
