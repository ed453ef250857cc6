package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spotinit/spotinit/preflight"
)

// Exit statuses of --check; bad options stay exitUsage (125).
const (
	exitCheckOK     = 0
	exitCheckFailed = 1
)

// check runs spotinit --check with what the options decided: the child is
// never started. The report goes to stdout: in --check mode there is no
// app to own it, the report is what the user asked for (as --help's text
// is), and `spotinit --check | jq` or `| grep problem` must see it. stderr
// stays for spotinit's own errors.
func check(st setup, asJSON bool, stdout io.Writer) int {
	cfg := preflight.Config{
		StopTimeout:  st.sup.StopTimeout,
		KillMargin:   st.sup.KillMargin,
		IMDS:         st.watch.Mode,
		Endpoint:     st.watch.Endpoint,
		Kinds:        st.watch.Kinds,
		PollInterval: st.watch.PollInterval,
		StaleAfter:   st.watch.StaleAfter,
		Simulated:    st.simulate != nil,
		PreStop:      st.sup.PreStop,
		OnRebalance:  st.sup.OnRebalance,
		PreStopDir:   st.sup.PreStopDir,
		NoticeFile:   st.sup.NoticeFile,
		ReportFile:   st.reportFile,
		Argv:         st.sup.Argv,
	}
	rep := preflight.Run(context.Background(), cfg)
	write := rep.WriteText
	if asJSON {
		write = rep.WriteJSON
	}
	if err := write(stdout); err != nil {
		fmt.Fprintf(os.Stderr, "spotinit: error: --check: write the report: %v\n", err)
		return exitCheckFailed
	}
	if !rep.OK() {
		return exitCheckFailed
	}
	return exitCheckOK
}
