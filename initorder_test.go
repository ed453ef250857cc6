package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// earlyExtras are the packages that the Go toolchain initialises before
// earlysignal although earlysignal does not need them: they sort before
// os (which earlysignal needs) and are ready from the start, so they run
// first (docs/performance.md, "The start-up signal window"). Their init
// work is about 0.04 ms.
var earlyExtras = []string{
	"crypto",
	"crypto/internal/fips140deps/cpu",
	"crypto/internal/fips140deps/time",
	"encoding/base64",
	"hash/crc32",
	"math",
	"github.com/aws/aws-sdk-go-v2/internal/sdk",
}

// TestInitOrder holds the start-up signal window to the Go runtime's: until
// earlysignal's init calls signal.Notify, a SIGTERM makes spotinit as PID 1
// exit 2, so nothing may run before it but what it needs itself and the
// few packages above. A new dependency or an import that moves heavier
// initialisation in front of it fails here, by name, on any machine (the
// start-up sweep, `go run ./stress startup-window`, measures the window
// itself). GODEBUG=inittrace=1 prints every package's init as it runs.
func TestInitOrder(t *testing.T) {
	bin := filepath.Join(buildSpotinit(t), "spotinit")
	cmd := exec.Command(bin, "--version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("spotinit --version: %v\n%s", err, stderr.String())
	}
	const early = "github.com/spotinit/spotinit/earlysignal"
	var before []string
	found := false
	for _, l := range strings.Split(stderr.String(), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "init" {
			continue
		}
		if f[1] == early {
			found = true
			break
		}
		before = append(before, f[1])
	}
	if !found {
		t.Fatalf("GODEBUG=inittrace=1 shows no init of %s:\n%s", early, stderr.String())
	}
	out, err := exec.Command("go", "list", "-deps", "./earlysignal").Output()
	if err != nil {
		t.Fatalf("go list -deps ./earlysignal: %v", err)
	}
	allowed := map[string]bool{}
	for _, p := range append(strings.Fields(string(out)), earlyExtras...) {
		allowed[p] = true
	}
	for _, p := range before {
		if !allowed[p] {
			t.Errorf("%s is initialised before earlysignal, which does not need it: its init widens the start-up signal window (order: %s)", p, strings.Join(before, " "))
		}
	}
	if len(before) == 0 {
		t.Errorf("no package initialised before earlysignal: inittrace is not what this test reads")
	}
}
