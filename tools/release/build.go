package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// arches are the architectures of a release, in the order they are built.
var arches = []string{"amd64", "arm64"}

// entryStub is the linker flag that makes earlysignal's assembly stub the
// binary's entry point (README, "Install").
const entryStub = "-E=_spotinit_rt0"

// buildTags leaves out urfave/cli's man-page and markdown generators.
const buildTags = "urfave_cli_no_docs"

// versionRE is the form of a release version: semver without the "v" and
// without build metadata; a pre-release uses letters, digits and dots only,
// so that it maps onto a Debian version and a Docker tag unchanged in meaning.
var versionRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z][0-9A-Za-z.]*)?$`)

func checkVersion(v string) error {
	if !versionRE.MatchString(v) {
		return fmt.Errorf("version %q: want MAJOR.MINOR.PATCH or MAJOR.MINOR.PATCH-PRERELEASE (letters, digits, dots), without a leading v", v)
	}
	return nil
}

// debVersion is the Debian version of a release version: 1.2.3-rc.1 becomes
// 1.2.3~rc.1, which dpkg sorts before 1.2.3.
func debVersion(v string) string { return strings.Replace(v, "-", "~", 1) }

// Names of the artefacts.
func binName(v, arch string) string   { return fmt.Sprintf("spotinit_%s_linux_%s", v, arch) }
func sbomName(v, arch string) string  { return binName(v, arch) + ".cdx.json" }
func imageName(v, arch string) string { return binName(v, arch) + ".image.tar" }
func debName(v, arch string) string   { return fmt.Sprintf("spotinit_%s_%s.deb", debVersion(v), arch) }

const sumsName = "SHA256SUMS"

// artefacts lists every file a release of version v holds besides
// SHA256SUMS, sorted.
func artefacts(v string) []string {
	var names []string
	for _, a := range arches {
		names = append(names, binName(v, a), sbomName(v, a), imageName(v, a), debName(v, a))
	}
	sort.Strings(names)
	return names
}

// release is one run of build.
type release struct {
	repo      string    // the repository's root
	out       string    // where the artefacts go
	version   string    // 1.2.3
	commit    string    // full hash, "-dirty" appended for a modified tree
	epoch     time.Time // SOURCE_DATE_EPOCH: every timestamp in the artefacts
	toolchain string    // GOTOOLCHAIN for every go command
	sbomTool  string    // cyclonedx-gomod
	tmp       string    // scratch directory, removed at the end
}

func cmdBuild(args []string) error {
	fl := flag.NewFlagSet("build", flag.ContinueOnError)
	version := fl.String("version", "", "release version, e.g. 1.2.3 (required)")
	out := fl.String("out", "dist", "output directory; replaced if it holds only release artefacts")
	sbomTool := fl.String("sbom-tool", "", "cyclonedx-gomod binary (default: built from tools/sbom)")
	toolchain := fl.String("toolchain", "", "GOTOOLCHAIN for the builds, e.g. go1.26.8 (default: the go command's own)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("build: unexpected arguments %q", fl.Args())
	}
	if err := checkVersion(*version); err != nil {
		return err
	}
	r := &release{version: *version, toolchain: *toolchain}
	var err error
	if r.repo, err = repoRoot(); err != nil {
		return err
	}
	if r.out, err = filepath.Abs(*out); err != nil {
		return err
	}
	if r.commit, err = gitCommit(r.repo); err != nil {
		return err
	}
	if r.epoch, err = sourceDateEpoch(r.repo); err != nil {
		return err
	}
	if r.tmp, err = os.MkdirTemp("", "spotinit-release-"); err != nil {
		return err
	}
	defer os.RemoveAll(r.tmp)
	if *sbomTool != "" {
		if r.sbomTool, err = filepath.Abs(*sbomTool); err != nil {
			return err
		}
	}
	return r.build()
}

// repoRoot is the root of spotinit's module: the working directory, as make
// runs it.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !bytes.Contains(b, []byte("module github.com/spotinit/spotinit\n")) {
		return "", fmt.Errorf("run from the root of spotinit's repository (%s has no spotinit go.mod)", dir)
	}
	return dir, nil
}

// gitCommit is the commit being released, with "-dirty" when the working
// tree differs from it (then the release is not reproducible from the commit,
// and build says so).
func gitCommit(repo string) (string, error) {
	head, err := output(repo, nil, "git", "rev-parse", "HEAD")
	if err != nil {
		return "", fmt.Errorf("the commit to release (a release is built from a git checkout): %w", err)
	}
	status, err := output(repo, nil, "git", "status", "--porcelain")
	if err != nil {
		return "", err
	}
	if status != "" {
		fmt.Fprintf(os.Stderr, "release: warning: the working tree has changes; the binaries say commit %s-dirty and cannot be rebuilt from the commit:\n%s\n", head, status)
		head += "-dirty"
	}
	return head, nil
}

// sourceDateEpoch is SOURCE_DATE_EPOCH if set, else the commit's time.
func sourceDateEpoch(repo string) (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		var err error
		if s, err = output(repo, nil, "git", "log", "-1", "--format=%ct", "HEAD"); err != nil {
			return time.Time{}, err
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// build writes every artefact into a new directory beside out and then puts
// it in out's place, so that a failed build leaves no half-made release.
func (r *release) build() error {
	if err := checkReplaceable(r.out); err != nil {
		return err
	}
	stage := r.out + ".new"
	if err := os.RemoveAll(stage); err != nil {
		return err
	}
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return err
	}
	goVer, err := output(r.repo, r.goEnv(nil), "go", "env", "GOVERSION")
	if err != nil {
		return err
	}
	logf("spotinit %s from commit %s, SOURCE_DATE_EPOCH=%d (%s), %s",
		r.version, r.commit, r.epoch.Unix(), r.epoch.Format(time.RFC3339), goVer)

	for _, arch := range arches {
		if err := r.goBuild(arch, filepath.Join(stage, binName(r.version, arch))); err != nil {
			return err
		}
	}
	if err := r.sboms(stage); err != nil {
		return err
	}
	notices, err := r.notices(filepath.Join(stage, binName(r.version, arches[0])), goVer)
	if err != nil {
		return fmt.Errorf("third-party notices: %w", err)
	}
	licence, err := os.ReadFile(filepath.Join(r.repo, "LICENSE"))
	if err != nil {
		return err
	}
	for _, arch := range arches {
		bin, err := os.ReadFile(filepath.Join(stage, binName(r.version, arch)))
		if err != nil {
			return err
		}
		img, err := buildImage(imageSpec{
			arch: arch, version: r.version, commit: r.commit, created: r.epoch,
			files: []layerFile{
				{name: "spotinit", mode: 0o755, data: bin},
				{name: "LICENSE", mode: 0o644, data: imageLicence(licence, notices)},
			},
		})
		if err != nil {
			return fmt.Errorf("image %s: %w", arch, err)
		}
		if err := os.WriteFile(filepath.Join(stage, imageName(r.version, arch)), img, 0o644); err != nil {
			return err
		}
		logf("wrote %s", imageName(r.version, arch))
	}
	help, err := r.helpText(stage)
	if err != nil {
		return err
	}
	changelog, err := os.ReadFile(filepath.Join(r.repo, "CHANGELOG.md"))
	if err != nil {
		return err
	}
	if !bytes.Contains(changelog, []byte("\n## ["+r.version+"]")) {
		// Not an error: CI and rehearsals build versions that are never
		// published. A real release renames [Unreleased] first
		// (CONTRIBUTING.md, "Releasing").
		logf("warning: CHANGELOG.md has no section \"## [%s]\"; the packages carry it as it is", r.version)
	}
	for _, arch := range arches {
		d := debSpec{arch: arch, version: r.version, epoch: r.epoch,
			binary: filepath.Join(stage, binName(r.version, arch)),
			help:   help, notices: notices, changelog: changelog}
		if err := d.build(filepath.Join(r.tmp, "deb-"+arch), filepath.Join(stage, debName(r.version, arch))); err != nil {
			return fmt.Errorf("debian package %s: %w", arch, err)
		}
		logf("wrote %s", debName(r.version, arch))
	}
	if err := writeSums(stage, artefacts(r.version)); err != nil {
		return err
	}
	// Modes as published, whatever the umask.
	if err := os.Chmod(stage, 0o755); err != nil {
		return err
	}
	for _, n := range append(artefacts(r.version), sumsName) {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(n, "_linux_amd64") || strings.HasSuffix(n, "_linux_arm64") {
			mode = 0o755
		}
		if err := os.Chmod(filepath.Join(stage, n), mode); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(r.out); err != nil {
		return err
	}
	if err := os.Rename(stage, r.out); err != nil {
		return err
	}
	logf("release %s in %s", r.version, r.out)
	return nil
}

// checkReplaceable refuses to replace a directory that holds anything but a
// release's files: out is removed whole.
func checkReplaceable(out string) error {
	entries, err := os.ReadDir(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if n := e.Name(); !e.Type().IsRegular() || !(strings.HasPrefix(n, "spotinit_") || n == sumsName) {
			return fmt.Errorf("%s holds %s, which is not a release artefact: remove it or choose another -out", out, n)
		}
	}
	return nil
}

// goEnv is the environment of the go commands: the caller's, with GOFLAGS
// replaced (a user's -buildmode=pie or -race must not change a release; an
// empty GOFLAGS would let the go env file's apply), the toolchain pinned,
// no workspace, and extra.
func (r *release) goEnv(extra []string) []string {
	set := []string{"GOFLAGS=-mod=readonly", "GOWORK=off"}
	if r.toolchain != "" {
		set = append(set, "GOTOOLCHAIN="+r.toolchain)
	}
	return withEnv(os.Environ(), append(set, extra...)...)
}

// goBuild builds the release binary for arch: static (CGO_ENABLED=0),
// stripped (-s -w), without build paths (-trimpath) or VCS stamping (the
// commit is stamped instead, so that the build does not depend on the state
// of the checkout), with the entry stub and the version.
func (r *release) goBuild(arch, out string) error {
	ldflags := fmt.Sprintf("-s -w %s -X main.version=%s -X main.commit=%s", entryStub, r.version, r.commit)
	env := r.goEnv([]string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + arch,
		// The architectures' baselines, whatever the caller's environment.
		// (A GOEXPERIMENT from the environment shows in the build
		// information, and verify refuses it.)
		"GOAMD64=v1", "GOARM64=v8.0"})
	if _, err := output(r.repo, env, "go", "build", "-trimpath", "-buildvcs=false", "-mod=readonly",
		"-tags="+buildTags, "-ldflags="+ldflags, "-o", out, "."); err != nil {
		return err
	}
	logf("built %s", filepath.Base(out))
	return nil
}

// sboms writes a CycloneDX SBOM for each binary with cyclonedx-gomod, built
// from its own module in tools/sbom unless given. It reads the modules from
// the binary's build information (its "bin" mode); -noserial and
// -notimestamp keep it reproducible (a random serial number and the time of
// the run would be all that differs between two runs). addBuildList then
// adds the rest of go.mod's build list as excluded components (sbom.go).
func (r *release) sboms(stage string) error {
	if r.sbomTool == "" {
		// Every SBOM records the generator's own hashes: it is built for
		// this machine with the architectures' baselines, so that releases
		// made on machines of one architecture agree.
		env := r.goEnv([]string{"GOOS=" + runtime.GOOS, "GOARCH=" + runtime.GOARCH, "GOAMD64=v1", "GOARM64=v8.0"})
		path, err := output(r.repo, env, "bash", filepath.Join(r.repo, "tools/sbom/build.sh"), filepath.Join(r.tmp, "sbom"))
		if err != nil {
			return fmt.Errorf("build the SBOM generator: %w", err)
		}
		r.sbomTool = path
	}
	mods, err := buildList(r.repo, r.goEnv(nil))
	if err != nil {
		return err
	}
	for _, arch := range arches {
		bin := filepath.Join(stage, binName(r.version, arch))
		out := filepath.Join(stage, sbomName(r.version, arch))
		if _, err := output(stage, r.goEnv(nil), r.sbomTool, "bin", "-json", "-noserial", "-notimestamp",
			"-version", "v"+r.version, "-output", out, bin); err != nil {
			return err
		}
		if err := addBuildList(out, mods); err != nil {
			return err
		}
		if err := os.Chmod(out, 0o644); err != nil {
			return err
		}
		logf("wrote %s", filepath.Base(out))
	}
	return nil
}

// helpText is spotinit --help, from the binary that runs here.
func (r *release) helpText(stage string) (string, error) {
	if runtime.GOOS != "linux" {
		return "", fmt.Errorf("the man page is made from spotinit --help, which needs linux (this is %s)", runtime.GOOS)
	}
	bin := filepath.Join(stage, binName(r.version, runtime.GOARCH))
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("the man page is made from spotinit --help, which needs a host of a release architecture: %w", err)
	}
	// An empty environment: urfave/cli shows an option's environment
	// variable, when set, as its default.
	return output(r.repo, []string{}, bin, "--help")
}

// writeSums writes SHA256SUMS over names, in sha256sum's format.
func writeSums(dir string, names []string) error {
	var b strings.Builder
	for _, n := range names {
		sum, err := fileSHA256(filepath.Join(dir, n))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, n)
	}
	return os.WriteFile(filepath.Join(dir, sumsName), []byte(b.String()), 0o644)
}

func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

// output runs a command in dir and returns its stdout, trimmed; the error
// carries its stderr. env nil means this process's environment.
func output(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// withEnv returns env with each K=V of set replacing any K there.
func withEnv(env []string, set ...string) []string {
	out := make([]string, 0, len(env)+len(set))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for _, s := range set {
			if sk, _, _ := strings.Cut(s, "="); sk == k {
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return append(out, set...)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "release: "+format+"\n", args...)
}
