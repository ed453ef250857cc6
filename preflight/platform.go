package preflight

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The platforms Run tells apart.
const (
	PlatformECS        = "ecs"        // ECS on EC2 (or ECS Anywhere)
	PlatformFargate    = "fargate"    // ECS on Fargate
	PlatformKubernetes = "kubernetes" // a pod
	PlatformDocker     = "docker"     // a Docker container, no orchestrator seen
	PlatformPodman     = "podman"     // a Podman container
	PlatformNone       = "none"       // none of the above
)

// PlatformReport is what runs the container and how it stops it.
type PlatformReport struct {
	// Name is one of the Platform constants.
	Name string `json:"name"`
	// Evidence lists the signals seen, strongest first: the variables
	// and files that gave the platform away.
	Evidence []string `json:"evidence"`
	// Rule says in words who sends the SIGKILL after the stop signal,
	// when, and what sets it.
	Rule string `json:"rule"`
	// DefaultStop is the platform's stop timeout when nobody sets one;
	// MaxStop the longest it allows (0: no limit).
	DefaultStop Duration `json:"default_stop_timeout,omitempty"`
	MaxStop     Duration `json:"max_stop_timeout,omitempty"`
}

// platformRule is one platform's stop-timeout facts.
type platformRule struct {
	title       string
	rule        string
	defaultStop time.Duration
	maxStop     time.Duration
	// raise says how to give the app N seconds of grace; %d is N.
	raise string
}

var rules = map[string]platformRule{
	PlatformECS: {
		title:       "ECS on EC2",
		rule:        "docker stop from the ECS agent: SIGKILL the container's stopTimeout after SIGTERM, else the agent's ECS_CONTAINER_STOP_TIMEOUT, else 30s",
		defaultStop: 30 * time.Second,
		raise:       `set "stopTimeout": %d on the container in the task definition (or ECS_CONTAINER_STOP_TIMEOUT=%[1]ds in the instance's /etc/ecs/ecs.config)`,
	},
	PlatformFargate: {
		title:       "ECS on Fargate",
		rule:        "SIGKILL the container's stopTimeout after SIGTERM: 30s when unset, at most 120s; Fargate Spot's warning is that SIGTERM",
		defaultStop: 30 * time.Second,
		maxStop:     120 * time.Second,
		raise:       `set "stopTimeout": %d on the container in the task definition`,
	},
	PlatformKubernetes: {
		title:       "Kubernetes",
		rule:        "kubelet sends SIGKILL terminationGracePeriodSeconds after SIGTERM (30s by default), preStop hooks included",
		defaultStop: 30 * time.Second,
		raise:       "set terminationGracePeriodSeconds: %d in the pod spec",
	},
	PlatformDocker: {
		title:       "plain Docker",
		rule:        "docker stop sends SIGKILL 10s after SIGTERM, unless the container was started with --stop-timeout or is stopped with -t",
		defaultStop: 10 * time.Second,
		raise:       "start the container with docker run --stop-timeout %d (Compose: stop_grace_period: %[1]ds) or stop it with docker stop -t %[1]d",
	},
	PlatformPodman: {
		title:       "Podman",
		rule:        "podman stop sends SIGKILL 10s after SIGTERM, unless the container was started with --stop-timeout or is stopped with -t",
		defaultStop: 10 * time.Second,
		raise:       "start the container with podman run --stop-timeout %d or stop it with podman stop -t %[1]d",
	},
	PlatformNone: {
		title: "no container platform recognised",
		rule:  "whoever stops spotinit decides when SIGKILL follows SIGTERM; --stop-timeout must match it",
	},
}

// Title is the platform's name for people.
func (p PlatformReport) Title() string { return rules[p.Name].title }

// detectPlatform reads the signals each platform leaves in its
// containers. The environment comes first: ECS and Kubernetes set it for
// every container and it cannot be mistaken, while /.dockerenv is there
// on ECS on EC2 and on Kubernetes nodes that run Docker too. The cgroup
// path is the last resort (cgroup v2 with a private namespace shows "/").
func detectPlatform(cfg *Config) PlatformReport {
	var ev []string
	name := ""
	set := func(n string) {
		if name == "" {
			name = n
		}
	}
	execEnv := cfg.getenv("AWS_EXECUTION_ENV")
	if execEnv != "" {
		ev = append(ev, "AWS_EXECUTION_ENV="+execEnv)
	}
	switch {
	case strings.HasPrefix(execEnv, "AWS_ECS_FARGATE"):
		set(PlatformFargate)
	case strings.HasPrefix(execEnv, "AWS_ECS_"):
		set(PlatformECS)
	}
	for _, k := range []string{"ECS_CONTAINER_METADATA_URI_V4", "ECS_CONTAINER_METADATA_URI"} {
		if cfg.getenv(k) != "" {
			ev = append(ev, k)
			set(PlatformECS) // Fargate sets AWS_EXECUTION_ENV too, checked above
			break
		}
	}
	if cfg.getenv("KUBERNETES_SERVICE_HOST") != "" {
		ev = append(ev, "KUBERNETES_SERVICE_HOST")
		set(PlatformKubernetes)
	}
	for _, f := range []struct{ path, platform string }{
		{".dockerenv", PlatformDocker},
		{"run/.containerenv", PlatformPodman},
	} {
		if _, err := os.Stat(filepath.Join(cfg.root, f.path)); err == nil {
			ev = append(ev, "/"+f.path)
			set(f.platform)
		}
	}
	if b, err := os.ReadFile(filepath.Join(cfg.root, "proc/self/cgroup")); err == nil {
		cg := string(b)
		for _, h := range []struct{ substr, platform string }{
			{"kubepods", PlatformKubernetes},
			{"/ecs/", PlatformECS},
			{"libpod", PlatformPodman},
			{"docker", PlatformDocker},
		} {
			if strings.Contains(cg, h.substr) {
				ev = append(ev, "cgroup "+strings.Trim(h.substr, "/"))
				set(h.platform)
				break
			}
		}
	}
	set(PlatformNone)
	ru := rules[name]
	return PlatformReport{
		Name:        name,
		Evidence:    ev,
		Rule:        ru.rule,
		DefaultStop: Duration(ru.defaultStop),
		MaxStop:     Duration(ru.maxStop),
	}
}

// TimingReport is the stop arithmetic spotinit would use.
type TimingReport struct {
	StopTimeout Duration `json:"stop_timeout"`
	KillMargin  Duration `json:"kill_margin"`
	// KillAfter is when spotinit sends its own SIGKILL, counted from the
	// stop signal: StopTimeout - KillMargin.
	KillAfter Duration `json:"kill_after"`
}

// checkTiming checks --stop-timeout and --kill-margin against the
// platform's rule and Spot's two minutes. It runs after the IMDS check,
// which may have learnt that the instance is Spot.
func checkTiming(cfg *Config, r *Report) TimingReport {
	stop, margin := cfg.StopTimeout, cfg.KillMargin
	tr := TimingReport{StopTimeout: Duration(stop), KillMargin: Duration(margin), KillAfter: Duration(stop - margin)}
	p := r.Platform
	ru := rules[p.Name]
	secs := func(d time.Duration) int { return int(math.Ceil(d.Seconds())) }
	switch {
	case ru.maxStop > 0 && stop > ru.maxStop:
		r.add(Problem, "timing",
			fmt.Sprintf("--stop-timeout %s is beyond %s's longest stop timeout, %s: its SIGKILL comes first, unlogged", stop, ru.title, ru.maxStop),
			fmt.Sprintf("set --stop-timeout %s and %s", ru.maxStop, fmt.Sprintf(ru.raise, secs(ru.maxStop))))
	case ru.defaultStop > 0 && stop > ru.defaultStop:
		// A warning, not a problem: no runtime tells a container its stop
		// timeout, so a user who did raise it could never pass the check.
		r.add(Warning, "timing",
			fmt.Sprintf("--stop-timeout %s is longer than %s's default stop timeout, %s: unless it was raised, its SIGKILL comes %s before spotinit's, unlogged", stop, ru.title, ru.defaultStop, stop-margin-ru.defaultStop),
			fmt.Sprintf("%s; or set --stop-timeout %s", fmt.Sprintf(ru.raise, secs(stop)), ru.defaultStop))
	}
	if stop > spotNotice && p.Name != PlatformFargate {
		msg := fmt.Sprintf("--stop-timeout %s is longer than the %s a Spot instance has after its notice", stop, "2m0s")
		fix := "set --stop-timeout 120s or less (and the platform's stop timeout with it)"
		switch r.IMDS.LifeCycle {
		case "spot":
			r.add(Problem, "timing", msg+": this instance is Spot, and goes before spotinit's SIGKILL", fix)
		case "on-demand":
		default:
			r.add(Warning, "timing", msg+": on Spot, the instance goes before spotinit's SIGKILL", fix)
		}
	}
	switch {
	case margin == 0:
		r.add(Problem, "timing",
			"--kill-margin 0s: spotinit's SIGKILL is due when the runtime's is, and the runtime's clock started first",
			"set --kill-margin 2s (the default)")
	case margin < 500*time.Millisecond:
		r.add(Warning, "timing",
			fmt.Sprintf("--kill-margin %s leaves little room: the runtime's clock starts before spotinit sees the signal", margin),
			"set --kill-margin 1s or more")
	}
	return tr
}
