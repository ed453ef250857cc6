package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spotinit/spotinit/earlysignal"
	"github.com/urfave/cli/v2"
)

// version and commit are stamped by release builds (make release, see
// tools/release): -ldflags "-X main.version=1.2.3 -X main.commit=HASH".
// A plain go build or go install leaves them empty, and --version falls back
// on the build information the Go toolchain records.
var (
	version = ""
	commit  = ""
)

// buildDesc is what spotinit --version reports about the running binary.
type buildDesc struct {
	version  string // stamped, else the module version, else "dev"
	commit   string // stamped, else the VCS revision Go recorded, else "unknown"
	goVer    string // the Go toolchain that built it
	platform string // GOOS/GOARCH
	stub     bool   // the entry stub ran: linked with -ldflags=-E=_spotinit_rt0
	pie      string // "yes", "no", or "unknown" without build information
}

// thisBuild describes the running binary.
func thisBuild() buildDesc {
	bi, _ := debug.ReadBuildInfo()
	_, exact := earlysignal.StartIgnored() // exact only when the stub ran
	return describe(version, commit, bi, exact)
}

// describe combines what was stamped with the build information bi (nil when
// the binary has none).
func describe(stampedVersion, stampedCommit string, bi *debug.BuildInfo, stub bool) buildDesc {
	d := buildDesc{
		version:  stampedVersion,
		commit:   stampedCommit,
		goVer:    runtime.Version(),
		platform: runtime.GOOS + "/" + runtime.GOARCH,
		stub:     stub,
		pie:      "unknown",
	}
	if bi == nil {
		if d.version == "" {
			d.version = "dev"
		}
		if d.commit == "" {
			d.commit = "unknown"
		}
		return d
	}
	if bi.GoVersion != "" {
		d.goVer = bi.GoVersion
	}
	// go install module@v1.2.3 records v1.2.3. A build inside a git
	// checkout records the version Go derives from it (Go 1.24 and later):
	// v1.2.3 on a clean checkout of that tag, else a pseudo-version such as
	// v0.0.0-20261204172053-602fade908ba, with "+dirty" for a modified tree;
	// without VCS information (-buildvcs=false, a copy of the source) it
	// records "(devel)".
	if v := bi.Main.Version; d.version == "" && v != "" && v != "(devel)" {
		d.version = strings.TrimPrefix(v, "v") // "1.2.3", as release builds say it
	}
	if d.version == "" {
		d.version = "dev"
	}
	var rev, modified, mode string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		case "-buildmode":
			mode = s.Value
		}
	}
	if d.commit == "" {
		d.commit = rev
		if rev != "" && modified == "true" {
			d.commit += "-dirty"
		}
	}
	if d.commit == "" {
		d.commit = "unknown"
	}
	switch mode {
	case "pie":
		d.pie = "yes"
	case "":
	default:
		d.pie = "no"
	}
	return d
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// write prints the report. The first line stays "spotinit version X": scripts
// parse it.
func (d buildDesc) write(w io.Writer) {
	fmt.Fprintf(w, "spotinit version %s\ncommit: %s\ngo: %s %s\nentry stub: %s\npie: %s\n",
		d.version, d.commit, d.goVer, d.platform, yesNo(d.stub), d.pie)
}

// versionFlag replaces urfave/cli's own, which prints only one line.
func versionFlag() cli.Flag {
	return &cli.BoolFlag{Name: "version", Aliases: []string{"v"},
		Usage: "print the version, commit, Go version and build kind"}
}
