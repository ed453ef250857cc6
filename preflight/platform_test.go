package preflight

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestDetectPlatform(t *testing.T) {
	t.Parallel()
	const (
		dockerCgroup  = "0::/\n12:memory:/docker/4f3c2e0d1b\n"
		k8sCgroup     = "11:memory:/kubepods/burstable/pod1234/abcd\n"
		ecsCgroup     = "9:memory:/ecs/3b7e0a/5f2c\n"
		podmanCgroup  = "0::/machine.slice/libpod-4f3c.scope\n"
		privateCgroup = "0::/\n"
	)
	for _, tc := range []struct {
		name     string
		env      map[string]string
		files    map[string]string // under the root
		want     string
		evidence string // joined with ", "
	}{
		{"nothing", nil, nil, PlatformNone, ""},
		{"private cgroup namespace", nil, map[string]string{"proc/self/cgroup": privateCgroup}, PlatformNone, ""},
		{"fargate", map[string]string{"AWS_EXECUTION_ENV": "AWS_ECS_FARGATE", "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/x"}, nil,
			PlatformFargate, "AWS_EXECUTION_ENV=AWS_ECS_FARGATE, ECS_CONTAINER_METADATA_URI_V4"},
		{"ecs on ec2", map[string]string{"AWS_EXECUTION_ENV": "AWS_ECS_EC2", "ECS_CONTAINER_METADATA_URI_V4": "x"},
			map[string]string{".dockerenv": "", "proc/self/cgroup": ecsCgroup},
			PlatformECS, "AWS_EXECUTION_ENV=AWS_ECS_EC2, ECS_CONTAINER_METADATA_URI_V4, /.dockerenv, cgroup ecs"},
		{"ecs, old agent without AWS_EXECUTION_ENV", map[string]string{"ECS_CONTAINER_METADATA_URI": "x"}, nil, PlatformECS, "ECS_CONTAINER_METADATA_URI"},
		{"ecs anywhere", map[string]string{"AWS_EXECUTION_ENV": "AWS_ECS_EXTERNAL"}, nil, PlatformECS, "AWS_EXECUTION_ENV=AWS_ECS_EXTERNAL"},
		{"kubernetes on docker", map[string]string{"KUBERNETES_SERVICE_HOST": "10.100.0.1"}, map[string]string{".dockerenv": ""},
			PlatformKubernetes, "KUBERNETES_SERVICE_HOST, /.dockerenv"},
		{"kubernetes by cgroup only", nil, map[string]string{"proc/self/cgroup": k8sCgroup}, PlatformKubernetes, "cgroup kubepods"},
		{"plain docker", nil, map[string]string{".dockerenv": "", "proc/self/cgroup": dockerCgroup}, PlatformDocker, "/.dockerenv, cgroup docker"},
		{"docker by cgroup only", nil, map[string]string{"proc/self/cgroup": dockerCgroup}, PlatformDocker, "cgroup docker"},
		{"podman", nil, map[string]string{"run/.containerenv": "", "proc/self/cgroup": podmanCgroup}, PlatformPodman, "/run/.containerenv, cgroup libpod"},
		{"an empty variable is no signal", map[string]string{"KUBERNETES_SERVICE_HOST": "", "AWS_EXECUTION_ENV": ""}, nil, PlatformNone, ""},
	} {
		cfg := baseConfig(t, tc.env)
		for name, content := range tc.files {
			p := filepath.Join(cfg.root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cfg.defaults()
		got := detectPlatform(&cfg)
		if got.Name != tc.want || strings.Join(got.Evidence, ", ") != tc.evidence {
			t.Errorf("%s: got %s from %q, want %s from %q", tc.name, got.Name, got.Evidence, tc.want, tc.evidence)
		}
		if got.Rule == "" || got.Title() == "" {
			t.Errorf("%s: no rule or title", tc.name)
		}
	}
}

// TestTiming: --stop-timeout and --kill-margin against each platform's
// rule and Spot's two minutes.
func TestTiming(t *testing.T) {
	t.Parallel()
	s := time.Second
	for _, tc := range []struct {
		platform     string
		stop, margin time.Duration
		lifeCycle    string
		want         []string // "problem: SUBSTR" or "warning: SUBSTR"; none when empty
	}{
		{PlatformDocker, 10 * s, 2 * s, "", nil},
		{PlatformDocker, 30 * s, 2 * s, "", []string{"warning: longer than plain Docker's default stop timeout, 10s: unless it was raised, its SIGKILL comes 18s before spotinit's | fix: start the container with docker run --stop-timeout 30 (Compose: stop_grace_period: 30s) or stop it with docker stop -t 30; or set --stop-timeout 10s"}},
		{PlatformPodman, 11 * s, 2 * s, "", []string{"warning: podman run --stop-timeout 11"}},
		{PlatformECS, 30 * s, 2 * s, "", nil},
		{PlatformECS, 90 * s, 2 * s, "", []string{`warning: ECS on EC2's default stop timeout, 30s | fix: set "stopTimeout": 90 on the container in the task definition (or ECS_CONTAINER_STOP_TIMEOUT=90s`}},
		{PlatformFargate, 120 * s, 2 * s, "", []string{`warning: fix: set "stopTimeout": 120`}},
		{PlatformFargate, 150 * s, 2 * s, "", []string{`problem: --stop-timeout 2m30s is beyond ECS on Fargate's longest stop timeout, 2m0s | fix: set --stop-timeout 2m0s and set "stopTimeout": 120`}},
		{PlatformKubernetes, 30 * s, 2 * s, "", nil},
		{PlatformKubernetes, 45 * s, 2 * s, "", []string{"warning: set terminationGracePeriodSeconds: 45 in the pod spec"}},
		{PlatformKubernetes, 2500 * time.Millisecond, 2 * s, "", nil},
		{PlatformNone, 10 * time.Minute, 2 * s, "", []string{"warning: 2m0s a Spot instance has after its notice: on Spot"}},
		{PlatformNone, 10 * time.Minute, 2 * s, "spot", []string{"problem: this instance is Spot"}},
		{PlatformNone, 10 * time.Minute, 2 * s, "on-demand", nil},
		{PlatformECS, 150 * s, 2 * s, "spot", []string{"warning: ECS on EC2's default", "problem: this instance is Spot"}},
		{PlatformNone, 30 * s, 0, "", []string{"problem: --kill-margin 0s | fix: set --kill-margin 2s"}},
		{PlatformNone, 30 * s, 100 * time.Millisecond, "", []string{"warning: --kill-margin 100ms leaves little room"}},
	} {
		r := Report{Platform: PlatformReport{Name: tc.platform}, IMDS: IMDSReport{LifeCycle: tc.lifeCycle}}
		cfg := Config{StopTimeout: tc.stop, KillMargin: tc.margin}
		tr := checkTiming(&cfg, &r)
		if time.Duration(tr.KillAfter) != tc.stop-tc.margin {
			t.Errorf("kill after %v", tr.KillAfter)
		}
		if len(r.Findings) != len(tc.want) {
			t.Errorf("%s %v/%v %s: findings\n%s\nwant %q", tc.platform, tc.stop, tc.margin, tc.lifeCycle, findingsText(&r), tc.want)
			continue
		}
		for i, w := range tc.want {
			sev, sub, _ := strings.Cut(w, ": ")
			f := r.Findings[i]
			// Each substring around " | " must appear in message or fix.
			whole := f.Message + " | fix: " + f.Fix
			for _, part := range strings.Split(sub, " | ") {
				if string(f.Severity) != sev || f.Area != "timing" || !strings.Contains(whole, strings.TrimPrefix(part, "fix: ")) {
					t.Errorf("%s %v: finding %d is %s %q, want %s containing %q", tc.platform, tc.stop, i, f.Severity, whole, sev, part)
				}
			}
		}
	}
}

func findingsText(r *Report) string {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString(string(f.Severity) + ": " + f.Message + " | fix: " + f.Fix + "\n")
	}
	return b.String()
}

func TestRole(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		pid     int
		pid1    string // /proc/1/comm under the root; "" for none
		sub     error
		role    string
		detail  string
		warning bool
	}{
		{"pid 1", 1, "", nil, rolePID1, "orphans come to spotinit", false},
		{"subreaper", 42, "bash", nil, roleSubreaper, "PID 1 (bash) must pass the stop signal on", false},
		{"docker exec into a running spotinit", 42, "spotinit", nil, roleSubreaper, "another spotinit", false},
		{"old kernel", 42, "", syscall.EINVAL, roleNone, "before Linux 3.4", true},
		{"seccomp", 42, "tini", syscall.EPERM, roleNone, "orphans of the app go to tini", true},
	} {
		cfg := baseConfig(t, nil)
		cfg.getpid = func() int { return tc.pid }
		cfg.setSubreaper = func() error { return tc.sub }
		if tc.pid1 != "" {
			os.MkdirAll(filepath.Join(cfg.root, "proc/1"), 0o755)
			os.WriteFile(filepath.Join(cfg.root, "proc/1/comm"), []byte(tc.pid1+"\n"), 0o644)
		}
		r := Run(context.Background(), cfg)
		if r.Role.Role != tc.role || r.Role.PID != tc.pid || !strings.Contains(r.Role.Detail, tc.detail) {
			t.Errorf("%s: %+v", tc.name, r.Role)
		}
		if got := len(findings(&r, Warning, "role")); (got == 1) != tc.warning || got > 1 {
			t.Errorf("%s: role warnings %d", tc.name, got)
		}
	}
}

// TestProbeSubreaper runs the real probe: this test process may become a
// subreaper, and is not one afterwards.
func TestProbeSubreaper(t *testing.T) {
	if err := probeSubreaper(); err != nil {
		t.Skipf("PR_SET_CHILD_SUBREAPER refused here: %v", err)
	}
	cfg := baseConfig(t, nil)
	cfg.setSubreaper = nil // the real one
	r := Run(context.Background(), cfg)
	if r.Role.Role != roleSubreaper {
		t.Errorf("role %+v", r.Role)
	}
	if is, err := isSubreaper(); err != nil || is {
		t.Errorf("the probe left this process a subreaper (%v)", err)
	}
}

func isSubreaper() (bool, error) {
	var v int32
	err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0, 0, 0)
	return v != 0, err
}
