// Command worker is the sample app of the FROM scratch image in
// Dockerfile.example: a static binary that processes items until SIGTERM or
// SIGINT, then finishes the item in hand and exits 0, as
// examples/python/app.py does. It needs nothing from the image but itself.
//
// Environment: WORKER_ITEM (how long one item takes, a Go duration; default
// 500ms).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	// Handlers first: as PID 1's child it gets the stop signal from spotinit,
	// and one that arrives before Notify would kill it mid-item.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	item := 500 * time.Millisecond
	if v := os.Getenv("WORKER_ITEM"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "worker: error: WORKER_ITEM %q: want a positive duration\n", v)
			os.Exit(2)
		}
		item = d
	}
	fmt.Printf("worker ready: pid %d\n", os.Getpid())
	for n := 1; ; n++ {
		// One item always completes, signal or not.
		time.Sleep(item)
		fmt.Printf("processed item %d\n", n)
		select {
		case sig := <-stop:
			fmt.Printf("received %v; wrapped up after item %d; exiting 0\n", sig, n)
			return
		default:
		}
	}
}
