package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readmeFlags are the README's build flags: the entry stub that records
// inherited signal dispositions and catches early signals needs -E.
var readmeFlags = []string{"-trimpath", "-tags=urfave_cli_no_docs", "-ldflags=-s -w -E=_spotinit_rt0"}

// A build is one way users build spotinit.
type build struct {
	name  string
	env   []string // added to the environment of go build
	flags []string // go build flags
	// stub: linked with the entry stub (-E=_spotinit_rt0), so the scripts
	// that need it run too.
	stub bool
	// emulator runs a binary built for another architecture (binfmt_misc
	// is not mounted on the CI machines: it is run explicitly).
	emulator string
	machine  elf.Machine
	elfType  elf.Type // ET_DYN for a position-independent executable
}

// builds are every way users build spotinit. The README's build also runs
// the whole script suite (TestScripts, with -race under go test -race).
var builds = []build{
	{name: "readme", env: []string{"CGO_ENABLED=0"}, flags: readmeFlags, stub: true,
		machine: elf.EM_X86_64, elfType: elf.ET_EXEC},
	// What go build and go install give: the toolchain's defaults, cgo
	// included where a C compiler is installed.
	{name: "plain", machine: elf.EM_X86_64, elfType: elf.ET_EXEC},
	// Distributions and hardened builds use PIE (GOFLAGS=-buildmode=pie),
	// with and without the stub: both link.
	{name: "pie", env: []string{"CGO_ENABLED=0"},
		flags:   []string{"-buildmode=pie", "-trimpath", "-tags=urfave_cli_no_docs", "-ldflags=-s -w"},
		machine: elf.EM_X86_64, elfType: elf.ET_DYN},
	{name: "pie-stub", env: []string{"CGO_ENABLED=0"}, flags: append([]string{"-buildmode=pie"}, readmeFlags...), stub: true,
		machine: elf.EM_X86_64, elfType: elf.ET_DYN},
	// Graviton: the README's build for arm64, run under qemu-user.
	{name: "arm64", env: []string{"CGO_ENABLED=0", "GOARCH=arm64"}, flags: readmeFlags, stub: true,
		emulator: "qemu-aarch64-static", machine: elf.EM_AARCH64, elfType: elf.ET_EXEC},
}

// smokeScripts run against every build: the stop sequence with SIGKILL
// escalation (on SIGTERM, and as PID 1), ten seconds of IMDS polling ending
// in a notice with hooks and --stop-on-notice, and orphans reaped as PID 1.
var smokeScripts = []string{"stop_escalate_kill", "notice_after_polling", "pid1_reap_orphans", "pid1_stop_and_signals"}

// stubScripts run against the builds with the entry stub: a SIGTERM that
// is already pending at exec, and signals ignored at exec inherited.
var stubScripts = []string{"signals_startup", "signals_inherited"}

// TestBuilds builds spotinit every way users build it and runs the smoke
// scripts against each build, as PID 1 where the scripts say so. It runs
// with SPOTINIT_BUILDS=all (test.sh's builds stage) or a comma-separated
// list of build names; building them all takes a minute or two of CPU.
func TestBuilds(t *testing.T) {
	which := os.Getenv("SPOTINIT_BUILDS")
	if which == "" {
		t.Skip("SPOTINIT_BUILDS is unset: set it to all, or to some of readme,plain,pie,pie-stub,arm64 (test.sh's builds stage sets all)")
	}
	var chosen []build
	for _, b := range builds {
		if which == "all" || slices.Contains(strings.Split(which, ","), b.name) {
			chosen = append(chosen, b)
		}
	}
	if len(chosen) == 0 {
		t.Fatalf("SPOTINIT_BUILDS=%q names no build", which)
	}
	// Build one at a time (go build uses every core), then run the scripts
	// against all of them at once: they mostly wait.
	dirs := make([]string, len(chosen))
	errs := make([]error, len(chosen))
	for i, b := range chosen {
		dirs[i], errs[i] = b.make(t.TempDir())
	}
	for i, b := range chosen {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			var skip errSkip
			if errors.As(errs[i], &skip) {
				t.Skip(skip)
			}
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			p := scriptParams(dirs[i])
			p.Dir = ""
			for _, name := range smokeScripts {
				p.Files = append(p.Files, filepath.Join("testscripts", name+".txtar"))
			}
			if b.stub {
				for _, name := range stubScripts {
					p.Files = append(p.Files, filepath.Join("testscripts", name+".txtar"))
				}
			}
			runScripts(t, p)
		})
	}
}

// make builds b into dir and returns the directory to put first on PATH:
// it holds "spotinit", the binary itself or, for another architecture, a
// wrapper that runs it under its emulator.
func (b build) make(dir string) (string, error) {
	var emulator string
	if b.emulator != "" {
		var err error
		if emulator, err = exec.LookPath(b.emulator); err != nil {
			if required(requireTools) {
				return "", fmt.Errorf("%s=1 but %s is not installed (Debian: qemu-user-static): %v", requireTools, b.emulator, err)
			}
			return "", errSkip(fmt.Sprintf("%s is not installed (Debian: qemu-user-static)", b.emulator))
		}
	}
	bin := filepath.Join(dir, "spotinit")
	if emulator != "" {
		bin = filepath.Join(dir, "spotinit-"+b.name)
	}
	args := append(append([]string{"build"}, b.flags...), "-o", bin, ".")
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), b.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s go %s: %v\n%s", strings.Join(b.env, " "), strings.Join(args, " "), err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if f.Machine != b.machine || f.Type != b.elfType {
		return "", fmt.Errorf("%s is %v %v, want %v %v", bin, f.Machine, f.Type, b.machine, b.elfType)
	}
	if emulator != "" {
		wrapper := fmt.Sprintf("#!/bin/sh\nexec %s %s \"$@\"\n", emulator, bin)
		if err := os.WriteFile(filepath.Join(dir, "spotinit"), []byte(wrapper), 0o755); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// errSkip is the error of a build that cannot be run here and is not
// required to.
type errSkip string

func (e errSkip) Error() string { return string(e) }
