package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spotinit/spotinit/simulator"
)

// The --check tests run spotinit --check where it would run: as the
// ENTRYPOINT of the app image and of a FROM scratch image, with --network
// none and with --network host towards a fake IMDS on the host's loopback,
// read-only, and with docker exec into a running container. The containers
// never reach the real IMDS: without a network the endpoint is a TEST-NET
// address (RFC 5737), which only shows that nothing can answer.

// noIMDS points a container without a network at an address nothing
// routes to.
const noIMDS = "http://192.0.2.1"

// checkBound bounds failure only: a whole --check, container start
// included, even with a hanging IMDS (its probe gives up after 2 s).
const checkBound = 30 * time.Second

// stdoutText is the container's stdout, one line per line.
func stdoutText(o output) string {
	var b strings.Builder
	for _, l := range o {
		if l.stream == "stdout" {
			b.WriteString(l.text + "\n")
		}
	}
	return b.String()
}

// runCheck runs a container to its end and returns its status, stdout and
// how long it ran.
func runCheck(t *testing.T, e *engine, args ...string) (int, string, time.Duration) {
	t.Helper()
	c := e.run(t, args...)
	code := c.wait(t)
	s := c.state(t)
	o := c.mustOutput(t)
	if len(o.lines("stderr", "")) > 0 {
		t.Errorf("--check wrote to stderr:\n%s", o)
	}
	return code, stdoutText(o), s.FinishedAt.Sub(s.StartedAt)
}

// wantLines checks that out holds each line prefix, at the start of a line.
func wantLines(t *testing.T, out string, prefixes ...string) {
	t.Helper()
	for _, p := range prefixes {
		if !strings.HasPrefix(out, p) && !strings.Contains(out, "\n"+p) {
			t.Errorf("no line starting %q in:\n%s", p, out)
		}
	}
}

// TestCheckAppImage: the sample app's image with --network none. As
// PID 1 in plain Docker with the image's 30s stop timeout, --check warns
// that docker stop's default is 10s, with the fix, and exits 0 (it cannot
// see whether the container was started with a longer one); the app never
// starts. With a 10s stop timeout there is no warning.
func TestCheckAppImage(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	base := []string{"-v", usrRO, "--network", "none", "-e", "SPOTINIT_LOG_FORMAT=text", "-e", "SPOTINIT_IMDS_ENDPOINT=" + noIMDS,
		"--entrypoint", "/spotinit"}
	code, out, _ := runCheck(t, e, append(base, appImage, "--check", "--", "python3", "/app/app.py")...)
	if code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	wantLines(t, out,
		"role      PID 1: orphans come to spotinit, which reaps them",
		"platform  plain Docker (/.dockerenv",
		"timing    --stop-timeout 30s, --kill-margin 2s: spotinit's own SIGKILL 28s after the stop signal",
		"imds      auto, "+noIMDS,
		"          not watched: nothing answers (not on EC2?)",
		"  token (PUT)                          ---",
		"hooks     pre-stop-dir /pre-stop.d/10-deregister: #!/bin/sh (",
		"          pre-stop-dir /pre-stop.d/20-flush: ",
		"command   python3: /usr/bin/python3: ELF, loader ",
		"warning: timing: --stop-timeout 30s is longer than plain Docker's default stop timeout, 10s: unless it was raised, its SIGKILL comes 18s before spotinit's, unlogged; fix: start the container with docker run --stop-timeout 30",
		"ok: everything a graceful stop needs is in place (1 warning)",
	)
	if strings.Contains(out, "app ready") {
		t.Errorf("the app started:\n%s", out)
	}

	code, out, _ = runCheck(t, e, append(base, "-e", "SPOTINIT_STOP_TIMEOUT=10s", appImage, "--check", "--", "python3", "/app/app.py")...)
	if code != 0 {
		t.Errorf("exit status %d, want 0:\n%s", code, out)
	}
	wantLines(t, out, "ok: everything a graceful stop needs is in place (0 warnings)")
}

// TestCheckAppImageJSON: the image's own SPOTINIT_LOG_FORMAT=json makes
// the report one JSON document on stdout.
func TestCheckAppImageJSON(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	code, out, _ := runCheck(t, e, "-v", usrRO, "--network", "none", "-e", "SPOTINIT_IMDS_ENDPOINT="+noIMDS,
		"--entrypoint", "/spotinit", appImage, "--check", "--", "python3", "/app/app.py")
	if code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	var doc struct {
		Version  int  `json:"version"`
		OK       bool `json:"ok"`
		Problems int  `json:"problems"`
		Role     struct {
			PID  int    `json:"pid"`
			Role string `json:"role"`
		} `json:"role"`
		Platform struct {
			Name     string   `json:"name"`
			Evidence []string `json:"evidence"`
		} `json:"platform"`
		IMDS struct {
			Probed bool `json:"probed"`
			Token  struct {
				Status int    `json:"status"`
				Error  string `json:"error"`
			} `json:"token"`
		} `json:"imds"`
		Hooks []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"hooks"`
		Command struct {
			Path string `json:"path"`
			OK   bool   `json:"ok"`
		} `json:"command"`
		Findings []struct {
			Severity, Area, Message, Fix string
		} `json:"findings"`
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want one line of JSON, got:\n%s", out)
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if doc.Version != 1 || !doc.OK || doc.Problems != 0 || doc.Role.PID != 1 || doc.Role.Role != "pid1" ||
		doc.Platform.Name != "docker" || !strings.Contains(strings.Join(doc.Platform.Evidence, " "), "/.dockerenv") ||
		!doc.IMDS.Probed || doc.IMDS.Token.Status != 0 || doc.IMDS.Token.Error == "" ||
		len(doc.Hooks) != 2 || !doc.Hooks[0].OK || doc.Command.Path != "/usr/bin/python3" || !doc.Command.OK ||
		len(doc.Findings) != 1 || doc.Findings[0].Area != "timing" || doc.Findings[0].Severity != "warning" || doc.Findings[0].Fix == "" {
		t.Errorf("report %+v\n%s", doc, out)
	}
}

// scratchImage is a FROM scratch image: spotinit, a hook directory with a
// shell script (which cannot run there) and one with a static binary (which
// can), and nothing else: no /bin/sh.
const scratchImage = "spotinit-e2e/scratch:latest"

var scratchOnce struct {
	sync.Once
	err error
}

func needScratchImage(t *testing.T, e *engine) {
	t.Helper()
	scratchOnce.Do(func() {
		root := filepath.Join(e.b.dir, "scratch-root")
		for _, d := range []string{"pre-stop.d", "static.d"} {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				scratchOnce.err = err
				return
			}
		}
		files := []struct {
			src, dst string
			content  string
		}{
			{src: e.b.spotinit, dst: "spotinit"},
			{dst: "pre-stop.d/10-flush", content: "#!/bin/sh\necho flushed\n"},
			{src: e.b.spotinit, dst: "static.d/10-static"}, // any static binary: only its loading is checked
		}
		for _, f := range files {
			dst := filepath.Join(root, f.dst)
			var err error
			if f.src != "" {
				err = copyFile(f.src, dst)
			} else {
				err = os.WriteFile(dst, []byte(f.content), 0o755)
			}
			if err != nil {
				scratchOnce.err = err
				return
			}
		}
		scratchOnce.err = e.importImage(scratchImage, imageConfig{
			env:        []string{"SPOTINIT_STOP_TIMEOUT=10s"},
			entrypoint: []string{"/spotinit", "--"},
			cmd:        []string{"/spotinit", "--version"},
		}, tree{src: root})
	})
	if scratchOnce.err != nil {
		t.Fatalf("scratch image: %v", scratchOnce.err)
	}
}

// TestCheckScratch: in a FROM scratch image --pre-stop commands and #!/bin/sh
// hooks cannot run; --check says so, each with its fix, and passes once the
// hooks are static binaries in --pre-stop-dir.
func TestCheckScratch(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	needScratchImage(t, e)
	base := []string{"--network", "none", "-e", "SPOTINIT_IMDS_ENDPOINT=" + noIMDS, "--entrypoint", "/spotinit", scratchImage}
	code, out, _ := runCheck(t, e, append(base, "--check", "--pre-stop", "echo bye", "--pre-stop-dir", "/pre-stop.d", "--", "/spotinit", "--version")...)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	wantLines(t, out,
		"role      PID 1: ",
		"platform  plain Docker (/.dockerenv",
		`hooks     pre-stop[1] "echo bye": /bin/sh: missing`,
		"          pre-stop-dir /pre-stop.d/10-flush: #!/bin/sh: missing",
		"command   /spotinit: static ELF",
		`problem: hooks: --pre-stop "echo bye" runs with /bin/sh, and /bin/sh is missing in this image: it will fail; fix: add it to the image; or move the command into an executable file in --pre-stop-dir, which runs without a shell`,
		"problem: hooks: --pre-stop-dir: /pre-stop.d/10-flush starts with #!/bin/sh, and /bin/sh is missing in this image: it will fail at a stop; fix: ",
		"not ready: 2 problems, 0 warnings",
	)

	code, out, _ = runCheck(t, e, append(base, "--check", "--pre-stop-dir", "/static.d", "--", "/spotinit", "--version")...)
	if code != 0 {
		t.Errorf("exit status %d, want 0:\n%s", code, out)
	}
	wantLines(t, out, "hooks     pre-stop-dir /static.d/10-static: static ELF", "ok: ")
}

// TestCheckReadOnly: a --notice-file in a read-only root cannot be written;
// access(2) says so (EROFS) and --check reports it.
func TestCheckReadOnly(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	code, out, _ := runCheck(t, e, "--read-only", "-v", usrRO, "--network", "none", "-e", "SPOTINIT_LOG_FORMAT=text",
		"-e", "SPOTINIT_IMDS_ENDPOINT="+noIMDS, "-e", "SPOTINIT_STOP_TIMEOUT=10s", "-e", "SPOTINIT_NOTICE_FILE=/app/notice.json",
		"--entrypoint", "/spotinit", appImage, "--check", "--", "python3", "/app/app.py")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	wantLines(t, out,
		"          notice-file /app/notice.json: directory /app is not writable: read-only file system",
		"problem: hooks: --notice-file /app/notice.json: directory /app is not writable: read-only file system: notices cannot be written; fix: point --notice-file at a writable volume",
	)
}

// TestCheckDockerExec: --check run with docker exec in a running container
// sees the same image and environment; it is not PID 1 there, and says that
// PID 1 is the spotinit that runs the app.
func TestCheckDockerExec(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	c := e.run(t, "-v", usrRO, "--network", "none", "-e", "SPOTINIT_IMDS=off", "-e", "SPOTINIT_NOTICE_SIGNAL=", "-e", fmt.Sprintf("SPOTINIT_STOP_TIMEOUT=%ds", stopSecs), appImage)
	c.waitOutput(t, "stdout", "app ready")
	out, err := e.docker("exec", "-e", "SPOTINIT_LOG_FORMAT=text", c.name, "/spotinit", "--check", "--", "python3", "/app/app.py")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantLines(t, out,
		"role      subreaper (pid ",
		"          off (--imds off)",
		"ok: ",
	)
	if !strings.Contains(out, "PID 1 is another spotinit") {
		t.Errorf("PID 1 not recognised:\n%s", out)
	}
	c.stop(t, stopSecs)
}

// startFake serves a simulator scenario on the host's loopback.
func startFake(t *testing.T, scenario string) *simulator.Server {
	t.Helper()
	sc, err := simulator.ParseScenario(scenario)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := simulator.Start(context.Background(), "127.0.0.1:0", sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestCheckIMDS: from a container on the host's network towards a fake
// IMDS: a healthy one with an active Spot notice (a warning, exit 0), and
// one whose token request hangs, diagnosed as the hop-limit trap within the
// bound (exit 1).
func TestCheckIMDS(t *testing.T) {
	begin(t)
	t.Parallel()
	e := needEngine(t)
	run := func(srv *simulator.Server) (int, string, time.Duration) {
		return runCheck(t, e, "-v", usrRO, "--network", "host", "-e", "SPOTINIT_LOG_FORMAT=text",
			"-e", "SPOTINIT_STOP_TIMEOUT=10s", "-e", "SPOTINIT_IMDS_ENDPOINT="+srv.URL(),
			"--entrypoint", "/spotinit", appImage, "--check", "--", "python3", "/app/app.py")
	}
	srv := startFake(t, "spot=0s")
	code, out, _ := run(srv)
	if code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	wantLines(t, out,
		"          auto, watched: the token request and the reads answer",
		"  token (PUT)                          200 ",
		"  spot/instance-action                 200 ",
		"  instance-id                          200 ",
		"warning: imds: a Spot interruption notice is active (terminate at ",
		"ok: everything a graceful stop needs is in place (1 warning)",
	)
	if st := srv.Stats(); st.TokenPUTs != 1 || st.GETs["/latest/meta-data/spot/instance-action"] != 1 {
		t.Errorf("the fake saw %+v", st)
	}

	srv = startFake(t, "fault=token:delay=1m")
	code, out, took := run(srv)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	wantLines(t, out,
		"          not watched: the token request hangs (hop limit)",
		"problem: imds: the IMDSv2 token request (PUT "+srv.URL()+"/latest/api/token) connected but got no answer within 2s: the instance's HttpPutResponseHopLimit (1 by default) drops the answer before it reaches this container; fix: run the container with --network host, or set the instance's hop limit to 2",
	)
	if took > checkBound {
		t.Errorf("--check ran %v with a hanging IMDS", took)
	}
	t.Logf("--check with a hanging token request: %v in the container", took.Round(time.Millisecond))
}
