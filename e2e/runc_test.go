package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runcContainer is one container run by runc in the foreground from a
// hand-made OCI bundle, as containerd's shim would run it.
type runcContainer struct {
	id, root, bundle string
	stdout, stderr   string // files
	done             chan struct{}
	status           int // runc run's exit status, once done is closed
}

// startRunc runs argv as the process of a new container whose root is the
// suite's rootfs, read-only, with the host's /usr read-only, a tmpfs on /tmp
// and the host directory state on /state, and the python stage's environment
// plus env.
func startRunc(t *testing.T, b *base, state string, env []string, argv ...string) *runcContainer {
	t.Helper()
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatalf("runc not found (apt-get install runc): %v", err)
	}
	id := fmt.Sprintf("e2e-%d", names.Add(1))
	c := &runcContainer{id: id, root: filepath.Join(b.dir, "runc"), bundle: filepath.Join(b.dir, "bundles", id), done: make(chan struct{})}
	c.stdout, c.stderr = filepath.Join(c.bundle, "stdout"), filepath.Join(c.bundle, "stderr")
	if err := os.MkdirAll(c.bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	// runc's own default spec (namespaces, capabilities, masked paths),
	// changed only where a container engine would.
	if out, err := exec.Command("runc", "spec", "--bundle", c.bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	if err := editSpec(filepath.Join(c.bundle, "config.json"), b, id, state, env, argv); err != nil {
		t.Fatal(err)
	}
	stdout, err := os.Create(c.stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(c.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd := exec.Command("runc", "--root", c.root, "run", "--bundle", c.bundle, id)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("runc run: %v", err)
	}
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			c.status = ee.ExitCode()
		}
		close(c.done)
	}()
	t.Cleanup(func() {
		checkRecords(t, c.output())
		if t.Failed() {
			t.Logf("output of runc container %s:\n%s", id, c.output())
		}
		exec.Command("runc", "--root", c.root, "delete", "-f", id).Run()
		select {
		case <-c.done:
		case <-time.After(commandTimeout):
			t.Errorf("runc run %s did not return after runc delete -f", id)
		}
	})
	shared.onTeardown(func() error { // an interrupt while the test runs
		exec.Command("runc", "--root", c.root, "delete", "-f", id).Run()
		return nil
	})
	return c
}

// editSpec turns runc's default config.json into the container id that the
// tests want.
func editSpec(file string, b *base, id, state string, env, argv []string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		return err
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = argv
	proc["cwd"] = "/"
	proc["env"] = append(append([]string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=runc-e2e"}, b.config.env...), env...)
	spec["root"] = map[string]any{"path": b.rootfs, "readonly": true}
	spec["hostname"] = "runc-e2e"
	spec["linux"].(map[string]any)["cgroupsPath"] = "/" + b.cgroup + "/" + id
	spec["mounts"] = append(spec["mounts"].([]any),
		map[string]any{"destination": "/usr", "type": "bind", "source": "/usr", "options": []string{"rbind", "ro"}},
		map[string]any{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "nodev", "mode=1777", "size=16m"}},
		map[string]any{"destination": "/state", "type": "bind", "source": state, "options": []string{"rbind", "rw"}},
	)
	out, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(file, out, 0o644)
}

// output reads what the container has printed so far.
func (c *runcContainer) output() output {
	so, _ := os.ReadFile(c.stdout)
	se, _ := os.ReadFile(c.stderr)
	return merge(parseOutput(string(so), "stdout", false), parseOutput(string(se), "stderr", false))
}

// waitOutput waits until a line of stream contains substr.
func (c *runcContainer) waitOutput(t *testing.T, stream, substr string) {
	t.Helper()
	waitFor(t, readyTimeout, fmt.Sprintf("%q on the %s of runc container %s", substr, stream, c.id), func() (bool, error) {
		select {
		case <-c.done:
			return false, fmt.Errorf("runc run returned %d", c.status)
		default:
		}
		return len(c.output().lines(stream, substr)) > 0, nil
	})
}

// signal sends sig with runc kill, as an engine stopping the container does.
func (c *runcContainer) signal(t *testing.T, sig string) {
	t.Helper()
	if out, err := exec.Command("runc", "--root", c.root, "kill", c.id, sig).CombinedOutput(); err != nil {
		t.Fatalf("runc kill %s %s: %v: %s", c.id, sig, err, out)
	}
}

// stop does what docker stop -t secs does: SIGTERM, then SIGKILL if the
// container is still there after secs. It returns the exit status, how long
// the container took, and whether the SIGKILL was needed.
func (c *runcContainer) stop(t *testing.T, secs int) (status int, took time.Duration, forced bool) {
	t.Helper()
	start := time.Now()
	c.signal(t, "TERM")
	select {
	case <-c.done:
		return c.status, time.Since(start), false
	case <-time.After(time.Duration(secs) * time.Second):
	}
	c.signal(t, "KILL")
	select {
	case <-c.done:
	case <-time.After(commandTimeout):
		t.Fatalf("runc container %s still running after SIGKILL", c.id)
	}
	return c.status, time.Since(start), true
}

// TestRuncStopGraceful: spotinit as PID 1 of a runc container with a
// read-only root: TERM runs the hooks, then the app wraps up; exit 0.
func TestRuncStopGraceful(t *testing.T) {
	begin(t)
	t.Parallel()
	b := needBase(t)
	state, err := os.MkdirTemp(b.dir, "state-")
	if err != nil {
		t.Fatal(err)
	}
	c := startRunc(t, b, state, []string{fmt.Sprintf("SPOTINIT_STOP_TIMEOUT=%ds", stopSecs), "APP_STATE_DIR=/state"},
		append(b.config.entrypoint, b.config.cmd...)...)
	c.waitOutput(t, "stdout", "app ready")

	// The root really is read-only (and /tmp, a tmpfs, is not).
	out, err := exec.Command("runc", "--root", c.root, "exec", c.id, "/bin/sh", "-c", "echo x >/rw-probe").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Read-only file system") {
		t.Errorf("writing to / in the container: %v %s; want a read-only file system", err, out)
	}
	if out, err := exec.Command("runc", "--root", c.root, "exec", c.id, "/bin/sh", "-c", "echo x >/tmp/probe").CombinedOutput(); err != nil {
		t.Errorf("writing to /tmp in the container: %v %s", err, out)
	}

	status, took, forced := c.stop(t, stopSecs)
	o := c.output()
	if forced || status != 0 {
		t.Fatalf("exit status %d (SIGKILL needed: %v), want 0:\n%s", status, forced, o)
	}
	if len(o.lines("stdout", "; exiting 0")) != 1 {
		t.Errorf("the app did not wrap up:\n%s", o)
	}
	checkHooksRan(t, o, state, "stop-signal", "SIGTERM", appPid(t, o))
	if !o.before(t, hookMark("20-flush", "would run"), `"msg":"pre-stop hooks done, child signalled"`) {
		t.Errorf("the app was signalled before the hooks were done:\n%s", o)
	}
	t.Logf("runc container stopped in %v", took.Round(time.Millisecond))
}

// TestRuncStopEscalateKill: an app that ignores SIGTERM in a runc container
// with a read-only root is killed by spotinit, stop timeout minus kill
// margin after the TERM: 137, and the runtime's SIGKILL is never needed.
func TestRuncStopEscalateKill(t *testing.T) {
	begin(t)
	t.Parallel()
	b := needBase(t)
	margin, err := time.ParseDuration(b.config.envValue("SPOTINIT_KILL_MARGIN"))
	if err != nil {
		t.Fatalf("Dockerfile.example's SPOTINIT_KILL_MARGIN: %v", err)
	}
	state, err := os.MkdirTemp(b.dir, "state-")
	if err != nil {
		t.Fatal(err)
	}
	c := startRunc(t, b, state, []string{fmt.Sprintf("SPOTINIT_STOP_TIMEOUT=%ds", stopSecs), "APP_STATE_DIR=/state"},
		append(b.config.entrypoint, "python3", "/e2e/ignore_term.py")...)
	c.waitOutput(t, "stdout", "app ready")

	status, took, forced := c.stop(t, stopSecs)
	o := c.output()
	if forced {
		t.Fatalf("the runtime had to SIGKILL after %ds:\n%s", stopSecs, o)
	}
	if status != 137 {
		t.Fatalf("exit status %d, want 137:\n%s", status, o)
	}
	want := stopSecs*time.Second - margin
	k := o.records("deadline reached, sent SIGKILL")
	if len(k) != 1 {
		t.Fatalf("want one SIGKILL line:\n%s", o)
	}
	if waited := k[0].duration("waited"); waited < want || waited > want+margin/2 {
		t.Errorf("spotinit waited %v before its SIGKILL, want %v", waited, want)
	}
	if took < want {
		t.Errorf("the container ended %v after the TERM, before spotinit's deadline %v", took, want)
	}
	t.Logf("runc container ended %v after the TERM (spotinit's SIGKILL at %v, the runtime's at %ds)", took.Round(time.Millisecond), want, stopSecs)
}
