package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// The release tests adopt spotinit the ways users do, from the artefacts of
// make release: the image loaded with docker load and copied from in a
// downstream Dockerfile, and the .deb installed with apt into a Debian root
// file system. tools/release/check.sh (make release-check, the last stage of
// test.sh) builds a release and runs them with these set; the rest of the
// suite does not build releases, so without them the tests skip, saying
// where they run.
const (
	releaseDistVar    = "SPOTINIT_RELEASE_DIST"    // the directory make release wrote
	releaseVersionVar = "SPOTINIT_RELEASE_VERSION" // its VERSION
	releaseDebrootVar = "SPOTINIT_RELEASE_DEBROOT" // a debootstrap --variant=minbase root; made here when unset
)

// releasePythonBase stands in for python:3.12-slim-bookworm in the
// downstream Dockerfile: the symlink layout whose /usr the container takes
// from the host.
const releasePythonBase = "spotinit-e2e/release-python-base:latest"

// downstreamDockerfile is what a user writes to add spotinit to an image
// from the release image (README, "Install"): the Python sample with its
// hooks, configured as Dockerfile.example's python stage is, in brief.
const downstreamDockerfile = `ARG PYTHON_IMAGE=python:3.12-slim-bookworm
FROM ${PYTHON_IMAGE}
COPY --from=spotinit:%s /spotinit /spotinit
COPY app.py /app/app.py
COPY pre-stop.d/ /pre-stop.d/
ENV SPOTINIT_PRE_STOP_DIR=/pre-stop.d
ENV SPOTINIT_STOP_TIMEOUT=30s
ENV SPOTINIT_LOG_FORMAT=json
ENTRYPOINT ["/spotinit", "--"]
CMD ["python3", "/app/app.py"]
`

// releaseInputs returns the release directory and version, skipping the
// test when no release was given.
func releaseInputs(t *testing.T) (dist, version string) {
	t.Helper()
	dist, version = os.Getenv(releaseDistVar), os.Getenv(releaseVersionVar)
	if dist == "" || version == "" {
		t.Skipf("%s and %s are not set: the release tests run in tools/release/check.sh (make release-check), which builds a release", releaseDistVar, releaseVersionVar)
	}
	begin(t)
	abs, err := filepath.Abs(dist)
	if err != nil {
		t.Fatal(err)
	}
	return abs, version
}

// releaseVersionLines checks spotinit --version's report of a release
// binary.
func releaseVersionLines(t *testing.T, o output, version string) {
	t.Helper()
	if len(o.lines("stdout", "")) == 0 || o.lines("stdout", "")[0] != "spotinit version "+version {
		t.Errorf("want the first line %q:\n%s", "spotinit version "+version, o)
	}
	for _, want := range []string{"entry stub: yes", "pie: no"} {
		if !slices.Contains(o.lines("stdout", want), want) {
			t.Errorf("want a line %q:\n%s", want, o)
		}
	}
}

// TestReleaseImage loads the release image as users do (docker load of the
// tarball, Debian 12's Docker 20.10 here), checks what it holds, and builds
// a downstream image from it with the legacy builder (COPY --from=
// spotinit:VERSION) that takes the Python sample through docker stop with
// its hooks and the stop report.
func TestReleaseImage(t *testing.T) {
	dist, version := releaseInputs(t)
	t.Parallel()
	e := needEngine(t)
	tag := "spotinit:" + version

	out := e.mustDocker(t, "load", "-i", filepath.Join(dist, fmt.Sprintf("spotinit_%s_linux_amd64.image.tar", version)))
	if !strings.Contains(out, "Loaded image: "+tag) {
		t.Fatalf("docker load said %q, want Loaded image: %s", out, tag)
	}
	// docker export shows the container's file system: the image's files
	// and what the engine adds to every container.
	var files []string
	for _, f := range exportedFiles(t, e, tag) {
		if !engineFile(f) {
			files = append(files, f)
		}
	}
	sort.Strings(files)
	if want := []string{"LICENSE", "spotinit"}; !slices.Equal(files, want) {
		t.Errorf("the image holds %q, want %q", files, want)
	}
	v := e.run(t, "--network", "none", tag)
	if code := v.wait(t); code != 0 {
		t.Fatalf("docker run %s: status %d:\n%s", tag, code, v.mustOutput(t))
	}
	releaseVersionLines(t, v.mustOutput(t), version)

	// The downstream image, built without a registry: the Python base is
	// a stand-in imported here, spotinit comes from the loaded image.
	root := filepath.Join(e.b.dir, "release-python-root")
	if err := symlinkLayout(root); err != nil {
		t.Fatal(err)
	}
	if err := e.importImage(releasePythonBase, imageConfig{}, tree{src: root}); err != nil {
		t.Fatal(err)
	}
	ctx := filepath.Join(e.b.dir, "release-context")
	if err := os.MkdirAll(filepath.Join(ctx, "pre-stop.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), fmt.Appendf(nil, downstreamDockerfile, version), 0o644); err != nil {
		t.Fatal(err)
	}
	copies := [][2]string{{"examples/python/app.py", "app.py"}}
	hooks, _ := filepath.Glob(filepath.Join(e.b.repo, "examples/python/pre-stop.d/*"))
	if len(hooks) == 0 {
		t.Fatal("no hooks in examples/python/pre-stop.d")
	}
	for _, h := range hooks {
		copies = append(copies, [2]string{strings.TrimPrefix(h, e.b.repo+"/"), "pre-stop.d/" + filepath.Base(h)})
	}
	for _, c := range copies {
		if err := copyFile(filepath.Join(e.b.repo, c[0]), filepath.Join(ctx, c[1])); err != nil {
			t.Fatal(err)
		}
	}
	const downstream = "spotinit-e2e/downstream:release"
	bctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	build := exec.CommandContext(bctx, "docker", "build", "--build-arg", "PYTHON_IMAGE="+releasePythonBase,
		"--network", "none", "-t", downstream, ctx)
	build.Env = e.env // DOCKER_BUILDKIT=0: the legacy builder
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build (legacy builder) of the downstream Dockerfile: %v\n%s", err, b)
	}

	v = e.run(t, "--network", "none", "--entrypoint", "/spotinit", downstream, "--version")
	if code := v.wait(t); code != 0 {
		t.Fatalf("/spotinit --version in the downstream image: status %d:\n%s", code, v.mustOutput(t))
	}
	releaseVersionLines(t, v.mustOutput(t), version)

	c, o, _ := stopSampleApp(t, e, downstream)
	r := stopReport(t, o)
	if r.str("trigger") != "SIGTERM" || r.num("code") != 0 || r["killed"] != false {
		t.Errorf("stop report %v", r)
	}
	if f := c.forceLines(t); len(f) > 0 {
		t.Errorf("dockerd had to use force: %q", f)
	}

	// The arm64 tarball loaded after it takes spotinit:VERSION over, as the
	// README says; the per-architecture tags keep naming one each.
	out = e.mustDocker(t, "load", "-i", filepath.Join(dist, fmt.Sprintf("spotinit_%s_linux_arm64.image.tar", version)))
	if !strings.Contains(out, "Loaded image: "+tag+"-arm64") {
		t.Errorf("docker load of the arm64 image said %q, want Loaded image: %s-arm64", out, tag)
	}
	for tag, want := range map[string]string{tag: "arm64", tag + "-amd64": "amd64", tag + "-arm64": "arm64"} {
		if got := strings.TrimSpace(e.mustDocker(t, "image", "inspect", "-f", "{{.Architecture}}", tag)); got != want {
			t.Errorf("after loading both tarballs, %s is %s, want %s", tag, got, want)
		}
	}
}

// engineFile reports whether the engine puts path (relative to the root)
// into every container.
func engineFile(path string) bool {
	switch path {
	case ".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf":
		return true
	}
	return strings.HasPrefix(path, "dev/")
}

// TestReleaseDeb installs the .deb with apt into a Debian root file system
// (debootstrap --variant=minbase of the host's release, imported as an image
// and run in the engine, without network), runs the installed spotinit, and
// removes the package again.
func TestReleaseDeb(t *testing.T) {
	dist, version := releaseInputs(t)
	t.Parallel()
	e := needEngine(t)
	root := os.Getenv(releaseDebrootVar)
	if root == "" {
		root = filepath.Join(e.b.dir, "debroot")
		start := time.Now()
		if err := debootstrap(root); err != nil {
			t.Fatal(err)
		}
		t.Logf("debootstrap --variant=minbase took %v", time.Since(start).Round(time.Second))
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/apt")); err != nil {
		t.Fatalf("%s is not a Debian root with apt: %v", root, err)
	}
	const image = "spotinit-e2e/debian-minbase:release"
	if err := importDir(e, image, root); err != nil {
		t.Fatal(err)
	}
	deb := fmt.Sprintf("spotinit_%s_amd64.deb", strings.Replace(version, "-", "~", 1))
	script := `set -eu
cd /dist
apt install -y ./` + deb + `
echo "== installed"
dpkg-query -W -f '${Package} ${Version} ${Architecture} ${Status}\n' spotinit
dpkg -L spotinit
echo "== version"
spotinit --version
echo "== run"
set +e
spotinit --imds off -- sh -c 'exit 7'
echo "child status $?"
set -e
apt remove -y spotinit
test ! -e /usr/bin/spotinit && echo "== removed"
`
	c := e.run(t, "--network", "none", "-v", dist+":/dist:ro", image, "sh", "-c", script)
	code := c.wait(t)
	o := c.mustOutput(t)
	if code != 0 {
		t.Fatalf("apt install in the Debian root: status %d:\n%s", code, o)
	}
	want := fmt.Sprintf("spotinit %s amd64 install ok installed", strings.Replace(version, "-", "~", 1))
	for _, line := range []string{want, "/usr/bin/spotinit", "/usr/share/doc/spotinit/copyright",
		"/usr/share/man/man1/spotinit.1.gz", "spotinit version " + version, "entry stub: yes",
		"child status 7", "== removed"} {
		if !slices.Contains(o.lines("stdout", line), line) {
			t.Errorf("want a line %q:\n%s", line, o)
		}
	}
}

// debootstrap makes a minimal Debian root of the host's release from the
// mirror the host's apt uses (about 45 s and 200 MB).
func debootstrap(root string) error {
	osr, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return err
	}
	var codename string
	for line := range strings.SplitSeq(string(osr), "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok {
			codename = strings.Trim(v, `"`)
		}
	}
	out, err := exec.Command("apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE)", "Created-By: Packages").Output()
	if err != nil {
		return fmt.Errorf("apt-get indextargets (the host's mirror): %w", err)
	}
	var mirror string
	for line := range strings.SplitSeq(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == codename {
			mirror = f[0]
			break
		}
	}
	if codename == "" || mirror == "" {
		return fmt.Errorf("no mirror of the host's release %q among apt's sources (apt-get update first):\n%s", codename, out)
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return fmt.Errorf("debootstrap not found (apt-get install debootstrap): %w", err)
	}
	cmd := exec.Command("debootstrap", "--variant=minbase", codename, root, mirror)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("debootstrap --variant=minbase %s %s %s: %v\n%s", codename, root, mirror, err, b)
	}
	return nil
}

// importDir imports a directory as an image with GNU tar, which keeps
// everything a Debian root holds (hard links, device nodes).
func importDir(e *engine, tag, dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	tarCmd := exec.CommandContext(ctx, "tar", "--numeric-owner", "-C", dir, "-c", ".")
	imp := exec.CommandContext(ctx, "docker", "import",
		"-c", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "-", tag)
	imp.Env = e.env
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		return err
	}
	imp.Stdin = pipe
	var tarErr, impErr strings.Builder
	tarCmd.Stderr, imp.Stderr = &tarErr, &impErr
	if err := tarCmd.Start(); err != nil {
		return err
	}
	ierr := imp.Run()
	if ierr != nil {
		io.Copy(io.Discard, pipe) // let tar finish
	}
	terr := tarCmd.Wait()
	if ierr != nil || terr != nil {
		return fmt.Errorf("tar -C %s | docker import %s: %w\n%s%s", dir, tag, errors.Join(terr, ierr), tarErr.String(), impErr.String())
	}
	return nil
}
