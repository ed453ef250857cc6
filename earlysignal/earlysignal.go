// Package earlysignal catches spotinit's signals from the first moment of the
// process, before any other package is initialised, and remembers which
// signals spotinit's parent left ignored.
//
// It owns the two channels that every caught signal goes to and nothing else:
// it never forwards, logs or acts on a signal. It must stay tiny and import
// only os, os/signal and syscall, so that its init runs as early as the Go
// linker allows: until signal.Notify has been called for SIGTERM, a SIGTERM
// makes the Go runtime exit with status 2 (and, for PID 1, the kernel then
// kills the whole container).
package earlysignal

import (
	"os"
	"os/signal"
	"slices"
	"sync/atomic"
	"syscall"
)

// StopSignals are the signals that start spotinit's stop sequence (see the
// table in table.go). They get a channel of their own so that a flood of
// other signals can never crowd one out.
var StopSignals = notifyList(func(h Handling) bool { return h&StartsStop != 0 })

// OtherSignals are the other signals spotinit catches: the ones it forwards
// and SIGPIPE.
var OtherSignals = notifyList(func(h Handling) bool { return h&StartsStop == 0 })

// fatal are the signals that end a Go program nobody has registered for:
// these must be caught in init.
var fatal = notifyList(func(h Handling) bool { return h&Fatal != 0 })

// The channels are package state because init must put them somewhere; they
// are written only by the runtime's signal delivery and read by the one
// supervisor loop. The runtime drops a signal when its channel is full, so
// the buffers are sized for bursts (repeats of a signal coalesce anyway).
// ready is closed when every caught signal is registered.
var (
	stopC  = make(chan os.Signal, 16)
	otherC = make(chan os.Signal, 1024)
	ready  = make(chan struct{})
)

func init() {
	if startKnown == 0 {
		// Without the entry stub, HUP and INT are the two signals the Go
		// runtime leaves ignored; Notify is about to change that, so look now.
		for _, s := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT} {
			if signal.Ignored(s) {
				startIgnored |= 1 << (s - 1)
			}
		}
	}
	// Each Notify is a round trip with the runtime's signal thread (about
	// 0.1 ms at start-up): the fatal ones here, the rest alongside the other
	// packages' initialisation, done before the child starts (Ready).
	Renotify(fatal...)
	handOn()
	go func() {
		for _, s := range OtherSignals {
			if !slices.Contains(fatal, s) { // those are registered already
				signal.Notify(otherC, s)
			}
		}
		handOn()
		close(ready)
	}()
}

// Ready returns once every caught signal is registered; call it before
// starting the child, so that from then on none is dropped.
func Ready() { <-ready }

// handOn passes on what the entry stub's handler caught before the runtime,
// or Notify, took over each signal.
func handOn() {
	pending := atomic.SwapUint64(&earlyPending, 0)
	for n := 1; n <= 64; n++ {
		if pending&(1<<(n-1)) == 0 {
			continue
		}
		s := syscall.Signal(n)
		c := otherC
		if isStop(s) {
			c = stopC
		}
		select {
		case c <- s:
		default:
		}
	}
}

// Stop returns the channel that receives SIGTERM and SIGINT.
func Stop() <-chan os.Signal { return stopC }

// Other returns the channel that receives every other caught signal.
func Other() <-chan os.Signal { return otherC }

// Renotify hands sigs back to the channel they belong to, after a caller had
// to change their disposition (signal.Ignore) for a moment.
func Renotify(sigs ...os.Signal) {
	for _, s := range sigs {
		if isStop(s) {
			signal.Notify(stopC, s)
		} else {
			signal.Notify(otherC, s)
		}
	}
}
