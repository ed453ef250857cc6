//go:debug updatemaxprocs=0

// Command spotinit is a small init for containers on EC2 Spot, ECS and
// anywhere else: it runs the app as its child, reaps zombies, forwards
// signals and sends SIGKILL itself just before the container's stop timeout
// runs out, so that the end of every container is logged and never a
// surprise.
//
// main only wires the command line to the packages; see cli.go for the
// options and their environment variables.
package main

import (
	"os"

	// Imported first, for its init: it catches SIGTERM and friends before
	// any other package initialises (see the package doc).
	_ "github.com/spotinit/spotinit/earlysignal"
)

func main() { os.Exit(run(os.Args)) }
