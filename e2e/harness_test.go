package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spotinit/spotinit/internal/logcheck"
)

// scratchPrefix names the scratch directories in os.TempDir; ownerFile in
// each holds the pid of the test process that made it, so that a later run
// can tell an abandoned one from one in use.
const (
	scratchPrefix = "spotinit-e2e-"
	ownerFile     = "owner.pid"
)

// Bounds on failure only: every wait below returns as soon as its condition
// holds. The machines are small and shared, hence the generous values.
const (
	readyTimeout   = 60 * time.Second // a container's app printing its ready line
	commandTimeout = 3 * time.Minute  // one docker or runc command
	buildTimeout   = 10 * time.Minute // one docker build
	pollEvery      = 50 * time.Millisecond
)

// appImage is the tag of the imported image that the docker tests run.
const appImage = "spotinit-e2e/app:latest"

// lazy computes a value once, on first use, and remembers its error.
type lazy[T any] struct {
	once sync.Once
	v    T
	err  error
}

func (l *lazy[T]) get(f func() (T, error)) (T, error) {
	l.once.Do(func() { l.v, l.err = f() })
	return l.v, l.err
}

// suite is the environment shared by the tests: each part is set up by the
// first test that needs it, and everything is undone by teardown.
type suite struct {
	base   lazy[*base]
	engine lazy[*engine]
	build  lazy[*buildInputs]

	mu       sync.Mutex
	cleanups []func() error // undone in reverse order
	torn     bool           // teardown has begun

	tearOnce sync.Once
	tearErr  error
}

// onTeardown registers f to run at teardown, after the ones registered
// later. After teardown has begun it runs f at once.
func (s *suite) onTeardown(f func() error) {
	s.mu.Lock()
	if !s.torn {
		s.cleanups = append(s.cleanups, f)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	f()
}

// teardown undoes everything set up, newest first, once; a second caller
// (an interrupt during the end of the run) waits for the first.
func (s *suite) teardown() error {
	s.tearOnce.Do(func() {
		s.mu.Lock()
		undo := s.cleanups
		s.cleanups, s.torn = nil, true
		s.mu.Unlock()
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i]())
		}
		s.tearErr = errors.Join(errs...)
	})
	return s.tearErr
}

// base is what every test needs: a scratch directory, spotinit built from
// this checkout, and the root filesystem of the app image.
type base struct {
	dir      string      // scratch directory
	cgroup   string      // parent cgroup of every container, named after this process
	repo     string      // the repository's root
	spotinit string      // the built binary
	rootfs   string      // symlink layout with spotinit, app, hooks, test apps
	config   imageConfig // the python stage of Dockerfile.example
}

// needBase returns the shared base, setting it up on first use; a failure
// fails the test (never skips it: the suite was asked for).
func needBase(t *testing.T) *base {
	t.Helper()
	b, err := shared.base.get(setupBase)
	if err != nil {
		t.Fatalf("e2e setup: %v", err)
	}
	return b
}

func setupBase() (*base, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("not root: dockerd and runc need root (run as root, as CI does)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("go not found on PATH: %w", err)
	}
	for _, f := range []string{"/usr/bin/python3", "/usr/bin/ps", "/usr/bin/sh"} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%s missing: the containers take the host's /usr (apt-get install python3-minimal procps): %w", f, err)
		}
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(repo, "go.mod")); err != nil || !bytes.Contains(b, []byte("module github.com/spotinit/spotinit\n")) {
		return nil, fmt.Errorf("%s is not spotinit's repository root", repo)
	}
	removeAbandoned()

	dir, err := os.MkdirTemp("", scratchPrefix)
	if err != nil {
		return nil, err
	}
	shared.onTeardown(func() error { return removeScratch(dir) })
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	b := &base{dir: dir, cgroup: cgroupName(os.Getpid()), repo: repo,
		spotinit: filepath.Join(dir, "spotinit"), rootfs: filepath.Join(dir, "rootfs")}
	// After the engine and the runc containers are gone (teardown runs
	// newest first), their cgroups' empty directories go too.
	shared.onTeardown(func() error { return removeCgroups(b.cgroup) })

	// The README's build line, version stamped so that the tests can tell
	// this binary from any other.
	build := exec.Command(goBin, "build", "-trimpath", "-tags=urfave_cli_no_docs",
		"-ldflags=-s -w -E=_spotinit_rt0 -X main.version=e2e", "-o", b.spotinit, ".")
	build.Dir = repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build spotinit: %v\n%s", err, out)
	}
	df, err := os.ReadFile(filepath.Join(repo, "Dockerfile.example"))
	if err != nil {
		return nil, err
	}
	if b.config, err = parseStage(string(df), "python"); err != nil {
		return nil, fmt.Errorf("Dockerfile.example: %w", err)
	}
	if err := b.makeRootfs(); err != nil {
		return nil, fmt.Errorf("root filesystem: %w", err)
	}
	return b, nil
}

// makeRootfs lays out the app image's root filesystem: the symlink layout of
// a merged-/usr Debian whose /usr the containers take from the host
// (read-only), the mount points a read-only root needs, spotinit, the sample
// app with its hooks, and the test apps.
func (b *base) makeRootfs() error {
	r := b.rootfs
	if err := symlinkLayout(r, "app", "pre-stop.d", "e2e", "state"); err != nil {
		return err
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(r, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	copies := [][2]string{
		{b.spotinit, "spotinit"},
		{filepath.Join(b.repo, "examples/python/app.py"), "app/app.py"},
	}
	for _, glob := range [][2]string{{"examples/python/pre-stop.d/*", "pre-stop.d"}, {"e2e/testdata/*.py", "e2e"}} {
		matches, err := filepath.Glob(filepath.Join(b.repo, glob[0]))
		if err != nil || len(matches) == 0 {
			return fmt.Errorf("nothing matches %s", glob[0])
		}
		for _, m := range matches {
			copies = append(copies, [2]string{m, path.Join(glob[1], filepath.Base(m))})
		}
	}
	for _, c := range copies {
		if err := copyFile(c[0], filepath.Join(r, c[1])); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies a regular file with its permission bits.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// removeScratch unmounts whatever is left under dir (dockerd leaves network
// namespace mounts after --network host) and removes it.
func removeScratch(dir string) error {
	var errs []error
	for _, mp := range mountsUnder(dir) {
		// Lazy: a mount still busy goes when its last user does.
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var mps []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		// Field 5 is the mount point, with space, tab, newline and
		// backslash octal-escaped; the scratch path has none of them.
		if mp := f[4]; strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	return slices.Compact(mps)
}

// removeAbandoned cleans up after earlier runs that were killed outright
// (SIGKILL, or go test's timeout, which no handler sees): a scratch
// directory whose owner is gone has its dockerd stopped (the one whose
// command line names the directory), its runc containers deleted, its
// mounts undone, and is removed. Directories whose owner lives are left
// alone: another run may be using them.
func removeAbandoned() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), scratchPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not ours, or being created
		}
		owner, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || syscall.Kill(owner, 0) != syscall.ESRCH {
			continue // alive (EPERM is alive too)
		}
		if pb, err := os.ReadFile(filepath.Join(dir, "dockerd.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(pb))); err == nil {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				if bytes.Contains(cmdline, []byte(dir+"/")) {
					stopPid(pid, 30*time.Second)
				}
			}
		}
		runcRoot := filepath.Join(dir, "runc")
		if out, err := exec.Command("runc", "--root", runcRoot, "list", "-q").Output(); err == nil {
			for id := range strings.FieldsSeq(string(out)) {
				exec.Command("runc", "--root", runcRoot, "delete", "-f", id).Run()
			}
		}
		removeCgroups(cgroupName(owner))
		removeScratch(dir)
	}
}

// cgroupName is the parent cgroup of the containers of the run whose test
// process is pid: dockerd's --cgroup-parent and the prefix of runc's
// cgroupsPath, so that the suite never creates or removes a cgroup that
// another engine uses.
func cgroupName(pid int) string { return fmt.Sprintf("spotinit-e2e-%d", pid) }

// removeCgroups removes the directories of the cgroup name (and of its
// children, deepest first) under every mounted hierarchy. rmdir removes only
// empty cgroups, so nothing that still holds a process is touched.
func removeCgroups(name string) error {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	if _, err := os.Stat("/sys/fs/cgroup/" + name); err == nil {
		roots = append(roots, "/sys/fs/cgroup/"+name) // cgroup v2 alone
	}
	var errs []error
	for _, root := range roots {
		var dirs []string
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// stopPid sends SIGTERM to pid and SIGKILL if it is still there after grace.
func stopPid(pid int, grace time.Duration) {
	syscall.Kill(pid, syscall.SIGTERM)
	for end := time.Now().Add(grace); time.Now().Before(end); time.Sleep(pollEvery) {
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			return
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// imageConfig is what a Dockerfile stage sets for the container.
type imageConfig struct {
	env        []string // K=V, in order
	entrypoint []string
	cmd        []string
}

// envValue returns the value the stage gives key, or "".
func (c imageConfig) envValue(key string) string {
	for _, kv := range c.env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

// parseStage reads the ENV, ENTRYPOINT and CMD lines of the stage named
// stage ("FROM ... AS stage"). It knows only the forms Dockerfile.example
// uses: one K=V per ENV line, JSON arrays for ENTRYPOINT and CMD.
func parseStage(dockerfile, stage string) (imageConfig, error) {
	var c imageConfig
	in, found := false, false
	for line := range strings.SplitSeq(dockerfile, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			in = len(f) == 4 && strings.EqualFold(f[2], "AS") && f[3] == stage
			found = found || in
		case "ENV":
			if !in {
				continue
			}
			if len(f) != 2 || !strings.Contains(f[1], "=") || strings.ContainsAny(f[1], `"'$\`) {
				return c, fmt.Errorf("stage %s: ENV line %q: want one plain K=V", stage, line)
			}
			c.env = append(c.env, f[1])
		case "ENTRYPOINT", "CMD":
			if !in {
				continue
			}
			var argv []string
			if err := json.Unmarshal([]byte(strings.TrimSpace(line[len(f[0]):])), &argv); err != nil {
				return c, fmt.Errorf("stage %s: %s is not a JSON array: %w", stage, f[0], err)
			}
			if strings.EqualFold(f[0], "CMD") {
				c.cmd = argv
			} else {
				c.entrypoint = argv
			}
		}
	}
	if !found {
		return c, fmt.Errorf("no stage named %s", stage)
	}
	return c, nil
}

// tree is a host directory to put into a tar stream under dst ("" for the
// archive's root); skip, when set, leaves out what it reports (rel is
// slash-separated and relative to src; a skipped directory is left out whole).
type tree struct {
	src, dst string
	skip     func(rel string, d fs.DirEntry) bool
}

// writeTar writes the trees as one tar stream, owned by root, keeping
// symlinks as symlinks and permission bits as they are.
func writeTar(w io.Writer, trees ...tree) error {
	tw := tar.NewWriter(w)
	for _, tr := range trees {
		err := filepath.WalkDir(tr.src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(tr.src, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if rel != "." && tr.skip != nil && tr.skip(rel, d) {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			name := path.Join(tr.dst, rel)
			if name == "." {
				return nil // the archive's root itself
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			var link string
			if fi.Mode()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			hdr, err := tar.FileInfoHeader(fi, link)
			if err != nil {
				return err
			}
			hdr.Name = name
			if fi.IsDir() {
				hdr.Name += "/"
			}
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		})
		if err != nil {
			return fmt.Errorf("tar %s: %w", tr.src, err)
		}
	}
	return tw.Close()
}

// waitFor polls cond until it reports true, failing the test with what and
// cond's last error after timeout. It bounds failure only.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	for end := time.Now().Add(timeout); ; time.Sleep(pollEvery) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, last)
		}
	}
}

// logLine is one line of a container's output.
type logLine struct {
	at     time.Time // when the engine received it (zero when unknown)
	stream string    // "stdout" or "stderr"
	text   string
}

// output is a container's output, stdout and stderr, in the order received
// (per stream; across streams by timestamp where there is one).
type output []logLine

// parseOutput reads one stream's lines, with the engine's RFC 3339
// timestamp in front of each when timestamps is set.
func parseOutput(s, stream string, timestamps bool) output {
	var out output
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		l := logLine{stream: stream, text: sc.Text()}
		if timestamps {
			if ts, rest, ok := strings.Cut(l.text, " "); ok {
				if at, err := time.Parse(time.RFC3339Nano, ts); err == nil {
					l.at, l.text = at, rest
				}
			}
		}
		out = append(out, l)
	}
	return out
}

// merge returns stdout and stderr in one list, ordered by timestamp.
func merge(stdout, stderr output) output {
	out := append(append(output{}, stdout...), stderr...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// lines returns the text of the lines of stream that contain substr.
func (o output) lines(stream, substr string) []string {
	var r []string
	for _, l := range o {
		if l.stream == stream && strings.Contains(l.text, substr) {
			r = append(r, l.text)
		}
	}
	return r
}

// index returns the position of the first line of stream that contains
// substr, counted in that stream alone, or -1.
func (o output) index(stream, substr string) int {
	i := 0
	for _, l := range o {
		if l.stream != stream {
			continue
		}
		if strings.Contains(l.text, substr) {
			return i
		}
		i++
	}
	return -1
}

// first returns the first line of stream containing substr.
func (o output) first(stream, substr string) (logLine, bool) {
	for _, l := range o {
		if l.stream == stream && strings.Contains(l.text, substr) {
			return l, true
		}
	}
	return logLine{}, false
}

// records returns spotinit's JSON log records (SPOTINIT_LOG_FORMAT=json, as
// Dockerfile.example sets it) whose msg is msg.
func (o output) records(msg string) []record {
	var r []record
	for _, l := range o {
		if l.stream != "stderr" || !strings.HasPrefix(l.text, "{") {
			continue
		}
		var rec record
		if json.Unmarshal([]byte(l.text), &rec) == nil && rec["msg"] == msg {
			r = append(r, rec)
		}
	}
	return r
}

// hookLines returns the output of the hook named name: the "line" of each
// "hook output" record, in either log format.
func (o output) hookLines(name string) []string {
	var r []string
	for _, l := range o {
		if l.stream != "stderr" {
			continue
		}
		rec, ok, err := logcheck.Parse(l.text)
		if ok && err == nil && rec.Get("msg") == "hook output" && rec.Get("hook") == name {
			r = append(r, rec.Get("line"))
		}
	}
	return r
}

// hookMark is the text that marks, in spotinit's JSON stream, the output
// line of hook name that starts with prefix.
func hookMark(name, prefix string) string {
	return `"msg":"hook output","logger":"spotinit","hook":"` + name + `","line":"` + prefix
}

// checkRecords fails the test for every record of spotinit's in o that
// breaks the logging rules, and every stop report that does not validate
// against docs/stop-report.schema.json (internal/logcheck). Every
// container's output goes through it when its test ends.
func checkRecords(t *testing.T, o output) {
	t.Helper()
	p, err := logcheck.SchemaPath()
	if err != nil {
		t.Fatal(err)
	}
	s, err := logcheck.LoadSchema(p)
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	for _, l := range o {
		if l.stream == "stderr" {
			stderr.WriteString(l.text + "\n")
		}
	}
	res := logcheck.Check(s, stderr.String())
	for _, p := range res.Problems {
		t.Errorf("log record: %s", p)
	}
	t.Logf("checked %d log records, %d stop reports", res.Records, res.Reports)
}

// before reports whether the first stderr line containing a comes before the
// first containing b; it fails the test when either is missing, so that an
// ordering check can never pass on absent lines.
func (o output) before(t *testing.T, a, b string) bool {
	t.Helper()
	i, j := o.index("stderr", a), o.index("stderr", b)
	if i < 0 || j < 0 {
		t.Fatalf("want both %q and %q on stderr:\n%s", a, b, o)
	}
	return i < j
}

// String renders the output for a failure message.
func (o output) String() string {
	var b strings.Builder
	for _, l := range o {
		fmt.Fprintf(&b, "  %s %s\n", l.stream, l.text)
	}
	return b.String()
}

// record is one JSON log record of spotinit.
type record map[string]any

// str returns a string field, or "".
func (r record) str(k string) string { s, _ := r[k].(string); return s }

// num returns a numeric field, or -1.
func (r record) num(k string) float64 {
	if f, ok := r[k].(float64); ok {
		return f
	}
	return -1
}

// duration returns a duration field (seconds in every record).
func (r record) duration(k string) time.Duration {
	return time.Duration(r.num(k) * float64(time.Second))
}

// time returns the record's time.
func (r record) time() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, r.str("time"))
	return t
}

// keyValues parses "k=v k=v" (the hooks' own output format) into a map.
func keyValues(s string) map[string]string {
	m := map[string]string{}
	for f := range strings.FieldsSeq(s) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// runCommand runs name with args under a timeout and returns its stdout;
// the error carries stderr.
func runCommand(ctx context.Context, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
