package main

import (
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// initSpec is one init under test.
type initSpec struct {
	name    string // spotinit, tini, dumb-init, catatonit
	path    string // "" when not installed
	pkg     string // Debian package, for peers
	version string
	missing string // why it is n/a, when path is ""
}

func (s *initSpec) ok() bool { return s.path != "" }

// argv is the command line that runs cmd under the init in mode m. opts are
// spotinit's options (ignored for the peers). Each peer runs with its
// documented defaults, plus what it needs to reap as a plain process.
func (s *initSpec) argv(m mode, opts []string, cmd ...string) []string {
	var a []string
	switch s.name {
	case "spotinit":
		a = append([]string{s.path}, opts...)
		a = append(a, "--")
	case "tini":
		a = []string{s.path}
		if m == plain {
			a = append(a, "-s") // subreaper: tini reaps orphans as non-PID 1 only so
		}
		a = append(a, "--")
	case "dumb-init":
		a = []string{s.path} // no "--": dumb-init takes the command as is
	case "catatonit":
		a = []string{s.path, "--"} // registers as a subreaper by itself when not PID 1
	}
	return append(a, cmd...)
}

// reapsPlain reports whether the init reaps orphans as a plain process.
func (s *initSpec) reapsPlain() bool { return s.name != "dumb-init" }

// peerPkgs are the Debian packages of the peers.
var peerPkgs = []string{"tini", "dumb-init", "catatonit"}

// findInits resolves the inits: spotinit at spotPath, the peers on PATH
// (tini-static before tini: the static one is what goes in a FROM scratch
// image, like Docker's own docker-init), or at the paths given.
func findInits(spotPath string, peerPath map[string]string, names []string) []*initSpec {
	var out []*initSpec
	for _, n := range names {
		s := &initSpec{name: n}
		switch n {
		case "spotinit":
			if st, err := os.Stat(spotPath); err == nil && !st.IsDir() {
				s.path = spotPath
				s.version = spotinitVersion(spotPath)
			} else {
				s.missing = "not built"
			}
		default:
			s.pkg = n
			cands := []string{n}
			if n == "tini" {
				cands = []string{"tini-static", "tini"}
			}
			if p := peerPath[n]; p != "" {
				cands = []string{p}
			}
			for _, c := range cands {
				if p, err := exec.LookPath(c); err == nil {
					s.path = p
					break
				}
			}
			if s.path == "" {
				s.missing = "not installed"
			} else {
				s.version = peerVersion(s)
			}
		}
		out = append(out, s)
	}
	return out
}

// installPeers installs the missing peers with apt-get when running as root
// on Debian, and says what it did on stderr.
func installPeers(logf func(string, ...any)) {
	var missing []string
	for _, p := range peerPkgs {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Geteuid() != 0 {
		logf("peers %v missing; not root, so not installing them (they are reported as n/a)", missing)
		return
	}
	if _, err := os.Stat("/etc/debian_version"); err != nil {
		logf("peers %v missing; not Debian, so not installing them (they are reported as n/a)", missing)
		return
	}
	install := func() error {
		cmd := exec.Command("apt-get", append([]string{"install", "-y"}, peerPkgs...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install: %v: %s", err, lastLines(string(out), 3))
		}
		return nil
	}
	logf("installing %v with apt-get", peerPkgs)
	if err := install(); err != nil {
		logf("%v; running apt-get update and trying again", err)
		if out, err := exec.Command("apt-get", "update").CombinedOutput(); err != nil {
			logf("apt-get update: %v: %s", err, lastLines(string(out), 3))
		}
		if err := install(); err != nil {
			logf("%v (the peers missing are reported as n/a)", err)
		}
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " / ")
}

// spotinitVersion is what the binary's build info says: the Go version it
// was built with and the commit.
func spotinitVersion(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "?"
	}
	v := bi.GoVersion
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += ", commit " + rev + dirty
	}
	return v
}

// peerVersion is the peer's Debian package version, else its own --version.
func peerVersion(s *initSpec) string {
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", s.pkg).Output(); err == nil && len(out) > 0 {
		return "Debian " + string(out)
	}
	out, _ := exec.Command(s.path, "--version").CombinedOutput()
	return strings.TrimSpace(lastLines(string(out), 1))
}

// binInfo describes a binary: size, and whether it is static and stripped.
type binInfo struct {
	size     int64
	static   bool
	stripped bool
	err      error
}

func describeBinary(path string) binInfo {
	st, err := os.Stat(path)
	if err != nil {
		return binInfo{err: err}
	}
	bi := binInfo{size: st.Size(), static: true, stripped: true}
	f, err := elf.Open(path)
	if err != nil {
		return binInfo{size: st.Size(), err: err}
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			bi.static = false
		}
	}
	if f.Section(".symtab") != nil {
		bi.stripped = false
	}
	return bi
}

// packageFiles lists the executables the peer's Debian package installs
// (dpkg -L), for the size notes.
func packageFiles(pkg string) []string {
	out, err := exec.Command("dpkg", "-L", pkg).Output()
	if err != nil {
		return nil
	}
	var bins []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "/bin/") {
			if st, err := os.Stat(l); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
				bins = append(bins, l)
			}
		}
	}
	return bins
}
