package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// engine is a dockerd of the suite's own, on its own socket and directories,
// with the app image imported.
type engine struct {
	b      *base
	dir    string // under the scratch directory
	env    []string
	log    string // dockerd's stdout and stderr
	cmd    *exec.Cmd
	exited chan struct{} // closed when dockerd has exited
}

// names makes container names unique within a run.
var names atomic.Int64

// needEngine returns the shared engine, starting it on first use.
func needEngine(t *testing.T) *engine {
	t.Helper()
	b := needBase(t)
	e, err := shared.engine.get(func() (*engine, error) { return startEngine(b) })
	if err != nil {
		t.Fatalf("e2e setup: %v", err)
	}
	return e
}

func startEngine(b *base) (*engine, error) {
	for _, tool := range []string{"dockerd", "docker"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found (apt-get install docker.io): %w", tool, err)
		}
	}
	e := &engine{b: b, dir: filepath.Join(b.dir, "docker"), exited: make(chan struct{})}
	e.log = filepath.Join(e.dir, "dockerd.log")
	for _, d := range []string{"data", "exec", "config"} {
		if err := os.MkdirAll(filepath.Join(e.dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	// An empty configuration file, so that a host's /etc/docker/daemon.json
	// (hosts, bridges, registries) cannot change this daemon.
	conf := filepath.Join(e.dir, "daemon.json")
	if err := os.WriteFile(conf, []byte("{}\n"), 0o644); err != nil {
		return nil, err
	}
	sock := "unix://" + filepath.Join(e.dir, "docker.sock")
	// The client's configuration is its own, not root's ~/.docker; builds
	// use the legacy builder (no buildx here, and it takes FROM a local
	// image).
	e.env = append(os.Environ(),
		"DOCKER_HOST="+sock,
		"DOCKER_CONFIG="+filepath.Join(e.dir, "config"),
		"DOCKER_BUILDKIT=0",
		"DOCKER_CLI_HINTS=false",
	)
	logf, err := os.Create(e.log)
	if err != nil {
		return nil, err
	}
	// The recipe of ../shared/CONTAINERS.md: nothing shared with a system
	// daemon, no network changes on the host.
	e.cmd = exec.Command("dockerd",
		"--config-file", conf,
		"--data-root", filepath.Join(e.dir, "data"),
		"--exec-root", filepath.Join(e.dir, "exec"),
		"--pidfile", filepath.Join(b.dir, "dockerd.pid"),
		"-H", sock,
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
		"--cgroup-parent", "/"+b.cgroup,
		"--log-level=info",
	)
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	e.cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // a Ctrl-C at the terminal is ours to pass on, after cleanup
		Pdeathsig: syscall.SIGTERM, // if this process dies without cleaning up
	}
	if err := e.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	logf.Close()
	go func() {
		e.cmd.Wait()
		close(e.exited)
	}()
	shared.onTeardown(e.stop)

	start := time.Now()
	for {
		if _, err := runCommand(context.Background(), e.env, "docker", "version"); err == nil {
			break
		}
		select {
		case <-e.exited:
			return nil, fmt.Errorf("dockerd exited at start (%v); its log:\n%s", e.cmd.ProcessState, tail(e.log, 30))
		case <-time.After(pollEvery):
		}
		if time.Since(start) > readyTimeout {
			return nil, fmt.Errorf("dockerd not answering after %v; its log:\n%s", readyTimeout, tail(e.log, 30))
		}
	}
	if err := e.importImage(appImage, b.config, tree{src: b.rootfs}); err != nil {
		return nil, err
	}
	return e, nil
}

// stop removes every container of this daemon (all of them are the
// suite's), then stops dockerd (by its own pid) and waits for it.
func (e *engine) stop() error {
	var errs []error
	ctx := context.Background()
	if ids, err := runCommand(ctx, e.env, "docker", "ps", "-aq"); err == nil && strings.TrimSpace(ids) != "" {
		if _, err := runCommand(ctx, e.env, "docker", append([]string{"rm", "-f"}, strings.Fields(ids)...)...); err != nil {
			errs = append(errs, err)
		}
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(30 * time.Second):
		e.cmd.Process.Kill()
		<-e.exited
		errs = append(errs, errors.New("dockerd did not stop within 30s of SIGTERM; killed"))
	}
	return errors.Join(errs...)
}

// tail returns the last n lines of a file.
func tail(file string, n int) string {
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// docker runs a docker command against this engine and returns its stdout.
func (e *engine) docker(args ...string) (string, error) {
	return runCommand(context.Background(), e.env, "docker", args...)
}

// mustDocker is docker that fails the test on error.
func (e *engine) mustDocker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.docker(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// importImage streams trees as a tar into docker import, with the
// configuration c (and a PATH, as the slim Python images set one).
func (e *engine) importImage(tag string, c imageConfig, trees ...tree) error {
	args := []string{"import"}
	for _, kv := range append([]string{"PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"}, c.env...) {
		args = append(args, "-c", "ENV "+kv)
	}
	for _, ins := range []struct {
		name string
		argv []string
	}{{"ENTRYPOINT", c.entrypoint}, {"CMD", c.cmd}} {
		if ins.argv != nil {
			j, _ := json.Marshal(ins.argv)
			args = append(args, "-c", ins.name+" "+string(j))
		}
	}
	args = append(args, "-", tag)

	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = e.env
	pr, pw := io.Pipe()
	cmd.Stdin = pr
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	wrote := make(chan error, 1)
	go func() {
		err := writeTar(pw, trees...)
		pw.CloseWithError(err)
		wrote <- err
	}()
	err := cmd.Run()
	pr.CloseWithError(errors.New("docker import has ended")) // unblocks the writer if import died early
	werr := <-wrote
	if err != nil {
		return fmt.Errorf("docker import %s: %w\n%s", tag, err, stderr.String())
	}
	if werr != nil {
		return fmt.Errorf("docker import %s: %w", tag, werr)
	}
	return nil
}

// container is one container of the engine, removed when its test ends.
type container struct {
	e    *engine
	name string
	id   string
}

// run starts a container, detached and never pulling, named after the test;
// args are docker run's options, the image and the command.
func (e *engine) run(t *testing.T, args ...string) *container {
	t.Helper()
	name := fmt.Sprintf("e2e-%d-%s", names.Add(1), strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	if len(name) > 60 {
		name = name[:60]
	}
	c := &container{e: e, name: name}
	t.Cleanup(func() {
		if o, err := c.output(); err == nil {
			checkRecords(t, o)
		}
		if t.Failed() {
			o, _ := c.output()
			t.Logf("output of %s:\n%s", c.name, o)
		}
		e.docker("rm", "-f", c.name)
	})
	out := e.mustDocker(t, append([]string{"run", "-d", "--pull=never", "--name", name}, args...)...)
	c.id = strings.TrimSpace(out)
	return c
}

// output returns the container's output so far, with the engine's
// timestamps.
func (c *container) output() (output, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "logs", "--timestamps", c.name)
	cmd.Env = c.e.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("docker logs %s: %w: %s", c.name, err, stderr.String())
	}
	return merge(parseOutput(stdout.String(), "stdout", true), parseOutput(stderr.String(), "stderr", true)), nil
}

// mustOutput is output that fails the test on error.
func (c *container) mustOutput(t *testing.T) output {
	t.Helper()
	o, err := c.output()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// waitOutput waits until a line of stream contains substr.
func (c *container) waitOutput(t *testing.T, stream, substr string) {
	t.Helper()
	waitFor(t, readyTimeout, fmt.Sprintf("%q on the %s of %s", substr, stream, c.name), func() (bool, error) {
		o, err := c.output()
		if err != nil {
			return false, err
		}
		return len(o.lines(stream, substr)) > 0, nil
	})
}

// state is the part of docker inspect's State the tests read.
type state struct {
	Status     string
	Running    bool
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
}

func (c *container) state(t *testing.T) state {
	t.Helper()
	var s state
	out := c.e.mustDocker(t, "inspect", "-f", "{{json .State}}", c.name)
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("inspect %s: %v", c.name, err)
	}
	return s
}

// stop runs docker stop -t secs, as ECS does with stopTimeout, and returns
// how long it took.
func (c *container) stop(t *testing.T, secs int) time.Duration {
	t.Helper()
	start := time.Now()
	c.e.mustDocker(t, "stop", "-t", fmt.Sprint(secs), c.name)
	return time.Since(start)
}

// wait waits for the container to exit on its own and returns its status.
func (c *container) wait(t *testing.T) int {
	t.Helper()
	waitFor(t, 2*readyTimeout, c.name+" to exit", func() (bool, error) {
		return !c.state(t).Running, nil
	})
	return c.state(t).ExitCode
}

// forceLines returns the lines of dockerd's log that say it had to SIGKILL
// the container: "Container failed to exit within 5s of signal 15 - using
// the force".
func (c *container) forceLines(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(c.e.log)
	if err != nil {
		t.Fatal(err)
	}
	var r []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, c.id) && (strings.Contains(line, "failed to exit within") || strings.Contains(line, "using the force")) {
			r = append(r, line)
		}
	}
	return r
}
