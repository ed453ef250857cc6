// Command windowfloor is the least a Go init can do before it catches
// SIGTERM: package earlysignal and nothing else, then start the child,
// forward the first stop signal to it and exit with 128 plus the signal
// that ended it. It takes spotinit's command line (options before "--" are
// ignored; the command after it must be an absolute path) and prints the
// two log lines that `stress startup-window` watches for, so that the sweep
// can measure it beside spotinit:
//
//	go build -o /tmp/windowfloor ./stress/windowfloor
//	go run ./stress startup-window -spotinit /tmp/windowfloor
//
// Whatever window it shows is the Go runtime's own, not spotinit's: what
// spotinit shows beyond it is the cost of what spotinit links in.
package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/spotinit/spotinit/earlysignal"
)

func main() {
	argv := os.Args[1:]
	for i, a := range argv {
		if a == "--" {
			argv = argv[i+1:]
			break
		}
	}
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "windowfloor: usage: windowfloor [IGNORED...] -- /ABSOLUTE/COMMAND [ARG...]")
		os.Exit(125)
	}
	earlysignal.Ready()
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Env: os.Environ(), Files: []uintptr{0, 1, 2}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "windowfloor: error: start %q: %v\n", argv[0], err)
		os.Exit(127)
	}
	fmt.Fprintf(os.Stderr, "level=INFO msg=\"child started\" pid=%d\n", pid)
	sig := (<-earlysignal.Stop()).(syscall.Signal)
	fmt.Fprintf(os.Stderr, "level=INFO msg=\"stop sequence started\" signal=%d\n", sig)
	_ = syscall.Kill(pid, sig)
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	if ws.Signaled() {
		os.Exit(128 + int(ws.Signal()))
	}
	os.Exit(ws.ExitStatus())
}
