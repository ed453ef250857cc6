package main

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// debMaintainer is the Maintainer field of the package. Debian asks for a
// name and an address; the project has no mailing address of its own yet, so
// the address is a reserved, never-delivered one until it does (issues and
// security reports go through GitHub: SECURITY.md, CONTRIBUTING.md).
const debMaintainer = "spotinit maintainers <maintainers@spotinit.invalid>"

// debSpec is one Debian package of a release.
type debSpec struct {
	arch, version string
	epoch         time.Time
	binary        string // the release binary
	help          string // spotinit --help
	notices       []byte // THIRD_PARTY_NOTICES
	changelog     []byte // CHANGELOG.md
}

// debDescription is the package's Description field: a synopsis, then the
// extended description, each line indented by one space.
const debDescription = `init for containers on EC2 Spot, ECS and anywhere else
 spotinit runs as PID 1 (the container's ENTRYPOINT), starts the app as its
 child, reaps zombies, forwards signals, watches the EC2 instance metadata
 service for Spot interruption and other notices, runs pre-stop hooks when
 one arrives, and sends SIGKILL itself just before the container's stop
 timeout runs out, so that the end of every container is logged and graceful
 where the app allows.
 .
 The binary is static: it needs no libc and can be copied from
 /usr/bin/spotinit into any image, FROM scratch included.`

// build lays the package's tree out in dir and builds it into out with
// dpkg-deb. Modes and owners are fixed (--root-owner-group), and dpkg-deb
// takes every time in the archive from SOURCE_DATE_EPOCH and sorts the
// entries, so the package is the same on every run with the same dpkg.
func (d debSpec) build(dir, out string) error {
	bin, err := os.ReadFile(d.binary)
	if err != nil {
		return err
	}
	manpage, err := gzipped([]byte(manPage(d.version, d.epoch, d.help)))
	if err != nil {
		return err
	}
	changelog, err := gzipped(d.changelog)
	if err != nil {
		return err
	}
	debianChangelog, err := gzipped(debChangelog(d.version, d.epoch))
	if err != nil {
		return err
	}
	files := []struct {
		path string
		mode os.FileMode
		data []byte
	}{
		{"usr/bin/spotinit", 0o755, bin},
		{"usr/share/doc/spotinit/copyright", 0o644, debCopyright(d.epoch)},
		{"usr/share/doc/spotinit/" + noticesName, 0o644, d.notices},
		{"usr/share/doc/spotinit/changelog.gz", 0o644, debianChangelog},
		{"usr/share/doc/spotinit/CHANGELOG.md.gz", 0o644, changelog},
		{"usr/share/man/man1/spotinit.1.gz", 0o644, manpage},
		{"usr/share/lintian/overrides/spotinit", 0o644, []byte(lintianOverrides)},
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	installedKiB := 0
	sums := map[string]string{}
	dirs := map[string]bool{}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		for d := filepath.Dir(f.path); d != "."; d = filepath.Dir(d) {
			dirs[d] = true
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
		// WriteFile's mode passes through the umask; the package's must not.
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
		installedKiB += (len(f.data) + 1023) / 1024
		s := md5.Sum(f.data)
		sums[f.path] = hex.EncodeToString(s[:])
	}
	installedKiB += len(dirs) // dpkg-gencontrol's rule: 1 KiB per directory

	control := fmt.Sprintf("Package: spotinit\nVersion: %s\nArchitecture: %s\nMaintainer: %s\n"+
		"Installed-Size: %d\nSection: admin\nPriority: optional\n"+
		"Homepage: https://github.com/spotinit/spotinit\nDescription: %s\n",
		debVersion(d.version), d.arch, debMaintainer, installedKiB, debDescription)
	var md5sums strings.Builder
	paths := make([]string, 0, len(sums))
	for p := range sums {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(&md5sums, "%s  %s\n", sums[p], p)
	}
	if err := os.MkdirAll(filepath.Join(dir, "DEBIAN"), 0o755); err != nil {
		return err
	}
	for name, text := range map[string]string{"control": control, "md5sums": md5sums.String()} {
		p := filepath.Join(dir, "DEBIAN", name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o644); err != nil {
			return err
		}
	}
	// Directories too: MkdirAll's 0755 passes through the umask.
	if err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			err = os.Chmod(p, 0o755)
		}
		return err
	}); err != nil {
		return err
	}
	env := withEnv(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", d.epoch.Unix()))
	// The compressor's type, level and threads are fixed: xz's output
	// differs between its single- and multi-threaded encoders, and dpkg
	// otherwise sizes the threads to the machine (--threads-max needs dpkg
	// 1.21.9, Debian 12's is 1.21.22).
	if _, err := output(dir, env, "dpkg-deb", "--root-owner-group", "-Zxz", "-z6", "--threads-max=1",
		"--build", dir, out); err != nil {
		return fmt.Errorf("dpkg-deb (part of dpkg, on every Debian and Ubuntu): %w", err)
	}
	return os.Chmod(out, 0o644)
}

// lintianOverrides answers lintian's one complaint about the package: the
// binary is static on purpose, so that it can be copied into any image.
const lintianOverrides = `# Static on purpose: copied from /usr/bin into images without a libc
# (FROM scratch); it links no C library.
spotinit: statically-linked-binary [usr/bin/spotinit]
`

// debCopyright is /usr/share/doc/spotinit/copyright in Debian's
// machine-readable format. The Apache License's text is not repeated: every
// Debian system has it in /usr/share/common-licenses; what is linked into
// the binary is listed, with licences and notices, in THIRD_PARTY_NOTICES.
func debCopyright(epoch time.Time) []byte {
	years := "2026"
	if y := epoch.UTC().Year(); y > 2026 {
		years = fmt.Sprintf("2026-%d", y)
	}
	return []byte(`Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: spotinit
Upstream-Contact: https://github.com/spotinit/spotinit/issues
Source: https://github.com/spotinit/spotinit

Files: *
Copyright: ` + years + ` The spotinit authors
License: Apache-2.0
Comment: /usr/bin/spotinit is statically linked with the Go standard library
 and runtime and with the Go modules listed, with their licences and notices,
 in /usr/share/doc/spotinit/` + noticesName + `.

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License"); you may not
 use this file except in compliance with the License. You may obtain a copy
 of the License at
 .
 http://www.apache.org/licenses/LICENSE-2.0
 .
 Unless required by applicable law or agreed to in writing, software
 distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
 WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
 License for the specific language governing permissions and limitations
 under the License.
 .
 On Debian systems, the full text of the Apache License, Version 2.0 can be
 found in "/usr/share/common-licenses/Apache-2.0".
`)
}

// debChangelog is the package's changelog.gz in Debian's format: the
// package is native (its version has no Debian revision), so that is where
// dpkg and apt look. It points to the project's own CHANGELOG.md, which the
// package carries beside it.
func debChangelog(version string, epoch time.Time) []byte {
	return fmt.Appendf(nil, `spotinit (%s) unstable; urgency=medium

  * spotinit %s. What changed is in
    /usr/share/doc/spotinit/CHANGELOG.md.gz.

 -- %s  %s
`, debVersion(version), version, debMaintainer, epoch.UTC().Format("Mon, 02 Jan 2006 15:04:05 -0700"))
}

// manPage is spotinit(1): a short description and the --help text.
func manPage(version string, date time.Time, help string) string {
	esc := func(s string) string {
		s = strings.ReplaceAll(s, `\`, `\e`)
		s = strings.ReplaceAll(s, "-", `\-`)
		var lines []string
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
				l = `\&` + l
			}
			lines = append(lines, l)
		}
		return strings.Join(lines, "\n")
	}
	return fmt.Sprintf(`.TH SPOTINIT 1 "%s" "spotinit %s" "User Commands"
.SH NAME
spotinit \- an init for containers on EC2 Spot, ECS and anywhere else
.SH SYNOPSIS
.B spotinit
[\fIOPTIONS\fR] [\fB\-\-\fR] \fICOMMAND\fR [\fIARG\fR...]
.SH DESCRIPTION
spotinit runs as PID 1 (the container's ENTRYPOINT), starts COMMAND as its
child, reaps zombies, forwards signals, watches the EC2 instance metadata
service for interruption notices, runs pre\-stop hooks when one arrives, and
sends SIGKILL itself just before the container's stop timeout runs out.
Every option can also be set with the environment variable shown beside it.
.SH OPTIONS
The text of
.BR "spotinit \-\-help" :
.PP
.nf
%s
.fi
.SH EXIT STATUS
The child's exit status; 128+N when it was killed by signal N; 125 for
spotinit's own errors (a bad option, no command); 126 when COMMAND cannot be
executed and 127 when it is not found.
.SH SEE ALSO
https://github.com/spotinit/spotinit
`, date.UTC().Format("2006-01-02"), version, esc(strings.TrimRight(help, "\n")))
}

// gzipped compresses b the way gzip -n does: no name, no time in the header.
func gzipped(b []byte) ([]byte, error) {
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
