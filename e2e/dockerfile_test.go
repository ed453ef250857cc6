package e2e

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Images the Dockerfile test builds from and builds.
const (
	builderImage    = "spotinit-e2e/go-builder:latest"
	pythonBaseImage = "spotinit-e2e/python-base:latest"
	exampleVersion  = "e2e-dockerfile"
)

// buildInputs is what docker build needs on a machine without a registry:
// stand-ins for the two base images and a build context.
type buildInputs struct {
	context string
}

// needBuildInputs imports the base image stand-ins and lays out the build
// context, once.
func needBuildInputs(t *testing.T, e *engine) *buildInputs {
	t.Helper()
	in, err := shared.build.get(func() (*buildInputs, error) { return makeBuildInputs(e) })
	if err != nil {
		t.Fatalf("e2e setup: %v", err)
	}
	return in
}

func makeBuildInputs(e *engine) (*buildInputs, error) {
	b := e.b
	goEnv := func(key string) (string, error) {
		out, err := exec.Command("go", "env", key).Output()
		return strings.TrimSpace(string(out)), err
	}
	goroot, err := goEnv("GOROOT")
	if err != nil {
		return nil, fmt.Errorf("go env GOROOT: %w", err)
	}
	modcache, err := goEnv("GOMODCACHE")
	if err != nil {
		return nil, fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	// Every module the build stage's `go mod download` asks for must be in
	// the host's cache (the Go proxy fills it if not: allowed here).
	dl := exec.Command("go", "mod", "download")
	dl.Dir = b.repo
	if out, err := dl.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go mod download: %v\n%s", err, out)
	}

	// The golang image stand-in: a shell (RUN lines use /bin/sh -c), the
	// host's Go toolchain at /usr/local/go, and the host's module downloads
	// served as a file:// proxy, so that the build stage runs as written
	// without network.
	root := filepath.Join(b.dir, "builder-root")
	if err := symlinkLayout(root, "usr/bin", "usr/local", "go", "src"); err != nil {
		return nil, err
	}
	if err := copyWithLibs("/usr/bin/dash", root); err != nil {
		return nil, err
	}
	if err := os.Symlink("dash", filepath.Join(root, "usr/bin/sh")); err != nil {
		return nil, err
	}
	builderEnv := imageConfig{env: []string{
		"PATH=/usr/local/go/bin:/usr/bin:/bin",
		"HOME=/root",
		"GOPATH=/go",
		"GOPROXY=file:///goproxy",
		"GOSUMDB=off", // go.sum is complete; nothing to look up
		"GOTOOLCHAIN=local",
	}}
	if err := e.importImage(builderImage, builderEnv,
		tree{src: root},
		tree{src: goroot, dst: "usr/local/go", skip: skipGoroot},
		tree{src: filepath.Join(modcache, "cache", "download"), dst: "goproxy", skip: func(rel string, d fs.DirEntry) bool {
			return rel == "sumdb" || strings.HasSuffix(rel, ".lock") || strings.HasSuffix(rel, ".partial")
		}},
	); err != nil {
		return nil, err
	}

	// The python image stand-in: the symlink layout whose /usr the
	// containers take from the host.
	pyRoot := filepath.Join(b.dir, "python-root")
	if err := symlinkLayout(pyRoot); err != nil {
		return nil, err
	}
	if err := e.importImage(pythonBaseImage, imageConfig{}, tree{src: pyRoot}); err != nil {
		return nil, err
	}

	ctx := filepath.Join(b.dir, "context")
	if err := copyContext(b.repo, ctx); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	return &buildInputs{context: ctx}, nil
}

// symlinkLayout makes a merged-/usr root: bin, lib, lib64 and sbin as
// symlinks into usr, the usual empty directories, and dirs.
func symlinkLayout(root string, dirs ...string) error {
	for _, d := range append([]string{"usr", "proc", "sys", "dev", "etc", "root", "tmp"}, dirs...) {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o777|fs.ModeSticky); err != nil {
		return err
	}
	for _, d := range []string{"bin", "lib", "lib64", "sbin"} {
		if err := os.Symlink("usr/"+d, filepath.Join(root, d)); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
}

// copyWithLibs copies a dynamically linked program into root at the same
// path, with the shared objects ldd names for it (under usr, where the
// symlink layout puts /lib and /lib64).
func copyWithLibs(prog, root string) error {
	out, err := exec.Command("ldd", prog).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", prog, err)
	}
	files := []string{prog}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		for f := range strings.FieldsSeq(sc.Text()) {
			if strings.HasPrefix(f, "/") {
				files = append(files, f)
			}
		}
	}
	for _, f := range files {
		dst := strings.TrimPrefix(f, "/")
		if !strings.HasPrefix(dst, "usr/") {
			dst = "usr/" + dst
		}
		dst = filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		real, err := filepath.EvalSymlinks(f)
		if err != nil {
			return err
		}
		if err := copyFile(real, dst); err != nil {
			return err
		}
	}
	return nil
}

// skipGoroot leaves out of the toolchain what building a static binary does
// not use: tests, test data, documentation, the commands' sources and the
// tools other than the compiler, assembler and linker.
func skipGoroot(rel string, d fs.DirEntry) bool {
	top, rest, _ := strings.Cut(rel, "/")
	switch top {
	case "bin":
		return rest != "" && rest != "go"
	case "pkg":
		if rest == "" || rest == "include" || strings.HasPrefix(rest, "include/") {
			return false
		}
		dir, tool, _ := strings.Cut(rest, "/")
		if dir != "tool" {
			return true
		}
		_, name, ok := strings.Cut(tool, "/") // tool/GOOS_GOARCH/name
		return ok && name != "compile" && name != "asm" && name != "link"
	case "src":
		return rest == "cmd" || d.Name() == "testdata" || strings.HasSuffix(rel, "_test.go")
	case "go.env", "VERSION":
		return false
	}
	return true
}

// copyContext copies the repository's source (what git tracks or would
// track: not .git, not built binaries) into dir, as a clean checkout would
// send it to docker build.
func copyContext(repo, dir string) error {
	out, err := exec.Command("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return fmt.Errorf("git ls-files (the context is what git would commit): %w", err)
	}
	for name := range strings.SplitSeq(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(repo, name)
		fi, err := os.Lstat(src)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		switch {
		case fi.Mode().IsRegular():
			err = copyFile(src, dst)
		case fi.Mode()&fs.ModeSymlink != 0:
			var link string
			if link, err = os.Readlink(src); err == nil {
				err = os.Symlink(link, dst)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// build runs the legacy builder on Dockerfile.example with the stand-ins
// as base images, and returns how long it took.
func build(t *testing.T, e *engine, in *buildInputs, tag string, extra ...string) time.Duration {
	t.Helper()
	args := append([]string{"build", "-f", filepath.Join(in.context, "Dockerfile.example"),
		"--build-arg", "GO_IMAGE=" + builderImage,
		"--build-arg", "PYTHON_IMAGE=" + pythonBaseImage,
		"--build-arg", "VERSION=" + exampleVersion,
		"--network", "none", "-t", tag}, extra...)
	args = append(args, in.context)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = e.env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return time.Since(start)
}

// imageInspect is the part of docker image inspect's Config the test reads.
type imageInspect struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
}

func inspectImage(t *testing.T, e *engine, tag string) imageInspect {
	t.Helper()
	var c imageInspect
	if err := json.Unmarshal([]byte(e.mustDocker(t, "image", "inspect", "-f", "{{json .Config}}", tag)), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDockerfileExample builds both targets of Dockerfile.example with the
// legacy builder, the Go stage included (from a stand-in golang image made
// of the host's toolchain and module cache), and runs what it built: the
// python target takes the sample app through docker stop, the scratch target
// a static worker with a hook run without a shell.
func TestDockerfileExample(t *testing.T) {
	begin(t)
	e := needEngine(t)
	in := needBuildInputs(t, e)

	t.Run("python", func(t *testing.T) {
		begin(t)
		const tag = "spotinit-e2e/example:python"
		took := build(t, e, in, tag)
		t.Logf("docker build (Go stage included, cold cache) took %v", took.Round(time.Second))
		cfg := inspectImage(t, e, tag)
		if !slices.Equal(cfg.Entrypoint, []string{"/spotinit", "--"}) || !slices.Equal(cfg.Cmd, []string{"python3", "/app/app.py"}) {
			t.Errorf("ENTRYPOINT %q CMD %q", cfg.Entrypoint, cfg.Cmd)
		}
		for _, kv := range e.b.config.env {
			if !slices.Contains(cfg.Env, kv) {
				t.Errorf("the image lacks ENV %s: %q", kv, cfg.Env)
			}
		}

		v := e.run(t, "--network", "none", "--entrypoint", "/spotinit", tag, "--version")
		if code := v.wait(t); code != 0 || len(v.mustOutput(t).lines("stdout", "spotinit version "+exampleVersion)) != 1 {
			t.Errorf("spotinit --version: status %d:\n%s", code, v.mustOutput(t))
		}

		stopSampleApp(t, e, tag)
	})

	t.Run("scratch", func(t *testing.T) {
		begin(t)
		const tag = "spotinit-e2e/example:scratch"
		took := build(t, e, in, tag, "--target", "scratch")
		t.Logf("docker build --target scratch took %v", took.Round(time.Second))

		// Nothing in the image but the three binaries: no shell to fall back on.
		files := exportedFiles(t, e, tag)
		for _, want := range []string{"spotinit", "worker", "pre-stop.d/10-checkpoint"} {
			if !slices.Contains(files, want) {
				t.Errorf("the image lacks /%s: %q", want, files)
			}
		}
		for _, f := range files {
			if strings.HasPrefix(f, "bin/") || strings.HasPrefix(f, "usr/") {
				t.Errorf("the scratch image has /%s", f)
			}
		}

		dir, err := os.MkdirTemp(e.b.dir, "state-")
		if err != nil {
			t.Fatal(err)
		}
		c := e.run(t, "--network", "none", "-v", dir+":/state", "-e", "CHECKPOINT_DIR=/state",
			"-e", fmt.Sprintf("SPOTINIT_STOP_TIMEOUT=%ds", stopSecs), tag)
		c.waitOutput(t, "stdout", "worker ready")
		c.stop(t, stopSecs)
		o := c.mustOutput(t)
		if s := c.state(t); s.ExitCode != 0 {
			t.Fatalf("exit status %d, want 0:\n%s", s.ExitCode, o)
		}
		if len(o.lines("stdout", "wrapped up after item")) != 1 {
			t.Errorf("the worker did not wrap up:\n%s", o)
		}
		h := o.hookLines("10-checkpoint")
		if len(h) != 2 || !strings.HasPrefix(h[0], "checkpoint: event=stop-signal action=SIGTERM") || h[1] != "checkpoint: written to /state/checkpoint.json" {
			t.Errorf("10-checkpoint printed %q:\n%s", h, o)
		}
		var ck checkpointFile
		b, err := os.ReadFile(filepath.Join(dir, "checkpoint.json"))
		if err == nil {
			err = json.Unmarshal(b, &ck)
		}
		if err != nil || ck.Event != "stop-signal" || ck.Action != "SIGTERM" || ck.ChildPID != appPid(t, o) {
			t.Errorf("checkpoint %q: %v", b, err)
		}
	})
}

// exportedFiles lists the regular files of a container made from image.
func exportedFiles(t *testing.T, e *engine, image string) []string {
	t.Helper()
	id := strings.TrimSpace(e.mustDocker(t, "create", "--pull=never", image))
	t.Cleanup(func() { e.docker("rm", "-f", id) })
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "export", id)
	cmd.Env = e.env
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var files []string
	tr := tar.NewReader(pipe)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			files = append(files, strings.TrimPrefix(h.Name, "./"))
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return files
}
