package preflight

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spotinit/spotinit/hooks"
	"github.com/spotinit/spotinit/interruption"
	"github.com/spotinit/spotinit/supervisor"
	"golang.org/x/sys/unix"
)

// ExecReport is one program or file a stop relies on.
type ExecReport struct {
	// Kind is pre-stop, on-rebalance, pre-stop-dir, notice-file or
	// command.
	Kind string `json:"kind"`
	// Name is the hook's name, the file's path, or the command as given.
	Name string `json:"name"`
	// Command is a command hook's text.
	Command string `json:"command,omitempty"`
	// Path is the program that would be executed (for notice-file, the
	// directory the file goes in).
	Path string `json:"path,omitempty"`
	// OK is false when a problem was found with it.
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// issue is what stops a program from being executed, and the fix.
type issue struct {
	msg, fix string
	code     int // the exit status exec's failure gives the child: 126 or 127
}

// maxInterpreterDepth bounds #! chains (Linux allows a few levels).
const maxInterpreterDepth = 4

// program checks that path can be executed here as execve(2) would: a
// regular file this process may execute, whose #! interpreter (looked up
// in pathEnv for "#!/usr/bin/env NAME") or ELF loader exists and is
// executable too. It returns what it found and, when execve would fail,
// why.
func program(path string, pathEnv []string, depth int) (string, *issue) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "missing", &issue{msg: path + " is missing in this image", fix: "add it to the image", code: 127}
		}
		return "cannot look at it", &issue{msg: fmt.Sprintf("%s: %v", path, unwrapPath(err)), fix: "make it readable to spotinit's user", code: 126}
	}
	if !fi.Mode().IsRegular() {
		return "not a regular file", &issue{msg: path + " is not a regular file (" + typeName(fi.Mode()) + ")", fix: "point at the program itself", code: 126}
	}
	// access(2), not the mode bits: it knows ownership and noexec mounts.
	if err := unix.Access(path, unix.X_OK); err != nil {
		return "not executable", &issue{
			msg:  fmt.Sprintf("%s is not executable (mode %s): %v", path, fi.Mode().Perm(), err),
			fix:  fmt.Sprintf("chmod +x %s (in a Dockerfile: COPY --chmod=755)", path),
			code: 126,
		}
	}
	f, err := os.Open(path)
	if err != nil {
		// Executable but unreadable: fine for a binary, and a script's
		// interpreter would fail to read it too, which cannot be told
		// from here.
		return "executable (unreadable, contents not checked)", nil
	}
	defer f.Close()
	head := make([]byte, 256) // BINPRM_BUF_SIZE: what the kernel reads of a #! line
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("#!")):
		return interpreter(path, head, pathEnv, depth)
	case bytes.HasPrefix(head, []byte(elfMagic)):
		return elfLoader(path, f)
	}
	return "no #! line and not a binary", &issue{
		msg:  path + " has no #! line and is not a binary: exec fails with \"exec format error\"",
		fix:  "make its first line name an interpreter the image has, e.g. #!/bin/sh",
		code: 126,
	}
}

// interpreter checks the program of a #! line.
func interpreter(path string, head []byte, pathEnv []string, depth int) (string, *issue) {
	line, _, _ := bytes.Cut(head[2:], []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) == 0 {
		return "empty #! line", &issue{msg: path + " has an empty #! line", fix: "name an interpreter the image has, e.g. #!/bin/sh", code: 126}
	}
	interp := fields[0]
	shown := "#!" + strings.TrimSpace(string(line))
	if depth >= maxInterpreterDepth {
		return shown, &issue{msg: path + ": too many levels of #! interpreters", fix: "point the #! line at a binary", code: 126}
	}
	detail, iss := program(interp, pathEnv, depth+1)
	if iss != nil {
		return shown + ": " + detail, &issue{
			msg: fmt.Sprintf("%s starts with %s, and %s", path, shown, iss.msg),
			fix: "install the interpreter, or change the #! line to one the image has, or make the program a static binary",
			// execve reports a missing interpreter as ENOENT, but the
			// program was found: spotinit, like a shell, exits 126.
			code: 126,
		}
	}
	// "#!/usr/bin/env NAME [ARGS]": env looks NAME up in PATH.
	if filepath.Base(interp) == "env" {
		name := ""
		for _, a := range fields[1:] {
			if !strings.HasPrefix(a, "-") && !strings.Contains(a, "=") {
				name = a
				break
			}
		}
		if name != "" {
			found, err := supervisor.LookPath(name, pathEnv)
			if err != nil {
				return shown + ": " + name + " not found", &issue{
					msg:  fmt.Sprintf("%s starts with %s, and %s is not found in PATH", path, shown, name),
					fix:  "install " + name + " in the image, or name its full path in the #! line",
					code: 127,
				}
			}
			d, iss := program(found, pathEnv, depth+1)
			if iss != nil {
				return shown + ": " + d, &issue{msg: fmt.Sprintf("%s starts with %s, and %s", path, shown, iss.msg), fix: iss.fix, code: iss.code}
			}
			return fmt.Sprintf("%s (%s: %s)", shown, found, d), nil
		}
	}
	return shown + " (" + detail + ")", nil
}

// elfLoader checks an ELF binary's architecture and dynamic loader.
func elfLoader(path string, f *os.File) (string, *issue) {
	machine, loader, err := readELF(f)
	if err != nil {
		return "unreadable ELF", &issue{msg: fmt.Sprintf("%s is not a valid ELF binary: %v", path, err), fix: "rebuild it", code: 126}
	}
	var note string
	if want := nativeMachine(); want != 0 && machine != want {
		// With binfmt_misc and qemu it may still run, slowly.
		name := elfMachines[machine]
		if name == "" {
			name = fmt.Sprintf("machine %d", machine)
		}
		note = fmt.Sprintf(", built for %s, not %s", name, elfMachines[want])
	}
	if loader == "" {
		return "static ELF" + note, nil
	}
	if _, err := os.Stat(loader); err != nil {
		return "ELF, loader " + loader + " missing", &issue{
			msg:  fmt.Sprintf("%s needs the dynamic loader %s, which is missing in this image: exec fails with \"no such file or directory\"", path, loader),
			fix:  "build it statically (Go: CGO_ENABLED=0) or add its C library to the image",
			code: 126, // found: spotinit exits 126, as for a missing interpreter
		}
	}
	return "ELF, loader " + loader + note, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// pathEnv is the PATH the child and the hooks get: spotinit's own.
func (cfg *Config) pathEnv() []string {
	if v, ok := cfg.LookupEnv("PATH"); ok {
		return []string{"PATH=" + v}
	}
	return nil
}

// checkHooks checks every hook program, the hook directory's files and
// the notice file's directory.
func checkHooks(cfg *Config, r *Report) {
	env := cfg.pathEnv()
	for _, set := range []struct {
		kind  string
		hooks []hooks.Hook
		fix   string
	}{
		{"pre-stop", cfg.PreStop, "or move the command into an executable file in --pre-stop-dir, which runs without a shell"},
		{"on-rebalance", cfg.OnRebalance, ""},
	} {
		for _, h := range set.hooks {
			er := ExecReport{Kind: set.kind, Name: h.Name, Path: h.Path}
			if len(h.Argv) == 3 {
				er.Command = h.Argv[2]
			}
			var iss *issue
			er.Detail, iss = program(h.Path, env, 0)
			er.OK = iss == nil
			if iss != nil {
				fix := iss.fix
				if set.fix != "" {
					fix += "; " + set.fix
				}
				r.add(Problem, "hooks", fmt.Sprintf("--%s %q runs with %s, and %s: it will fail", set.kind, er.Command, h.Path, iss.msg), fix)
			}
			r.Hooks = append(r.Hooks, er)
		}
	}
	if len(cfg.OnRebalance) > 0 && !hasKind(cfg.Kinds, interruption.Rebalance) {
		r.add(Warning, "hooks", "--on-rebalance hooks will never run: --notices does not watch rebalance recommendations",
			"add rebalance to --notices (SPOTINIT_NOTICES=spot,asg,rebalance)")
	}
	if cfg.PreStopDir != "" {
		checkHookDir(cfg.PreStopDir, env, r)
	}
	if cfg.NoticeFile != "" {
		r.Hooks = append(r.Hooks, checkOutputFile("notice-file", cfg.NoticeFile, "notices cannot be written", r))
	}
	if cfg.ReportFile != "" {
		r.Hooks = append(r.Hooks, checkOutputFile("report-file", cfg.ReportFile, "the stop report cannot be written", r))
	}
}

// checkHookDir reports every file of the hook directory: those hooks.Dir
// will run, with their interpreters checked, and those it will skip.
func checkHookDir(dir string, env []string, r *Report) {
	if err := hooks.CheckDir(dir); err != nil {
		r.Hooks = append(r.Hooks, ExecReport{Kind: "pre-stop-dir", Name: dir, Detail: err.Error()})
		r.add(Problem, "hooks", fmt.Sprintf("--pre-stop-dir %s: %v", dir, unwrapPath(errors.Unwrap(err))),
			"create the directory in the image or mount it there (a volume, a ConfigMap), or unset --pre-stop-dir")
		return
	}
	runnable, _, err := hooks.Dir(dir) // what a stop would run
	if err != nil {
		r.Hooks = append(r.Hooks, ExecReport{Kind: "pre-stop-dir", Name: dir, Detail: err.Error()})
		r.add(Problem, "hooks", fmt.Sprintf("--pre-stop-dir %s: %v", dir, err), "make it readable to spotinit's user")
		return
	}
	runs := map[string]bool{}
	for _, h := range runnable {
		runs[h.Path] = true
	}
	entries, _ := os.ReadDir(dir) // readable: hooks.Dir just read it
	n := 0
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			continue // hooks.Dir skips these silently
		}
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			continue // so are directories
		}
		n++
		er := ExecReport{Kind: "pre-stop-dir", Name: path, Path: path}
		var iss *issue
		er.Detail, iss = program(path, env, 0)
		er.OK = iss == nil
		switch {
		case iss != nil && !runs[path]:
			r.add(Problem, "hooks", fmt.Sprintf("--pre-stop-dir: %s: it will be skipped at a stop", iss.msg),
				iss.fix+"; or remove it from "+dir)
		case iss != nil:
			r.add(Problem, "hooks", fmt.Sprintf("--pre-stop-dir: %s: it will fail at a stop", iss.msg), iss.fix)
		}
		r.Hooks = append(r.Hooks, er)
	}
	if n == 0 {
		r.Hooks = append(r.Hooks, ExecReport{Kind: "pre-stop-dir", Name: dir, OK: true, Detail: "empty"})
		r.add(Warning, "hooks", fmt.Sprintf("--pre-stop-dir %s holds no files: no hook will run from it", dir), "")
	}
}

// checkOutputFile checks that a file spotinit writes (option is
// "notice-file" or "report-file") can be written: its directory exists and
// is writable (access(2) also reports a read-only file system). Nothing is
// written; lost says what is lost when it cannot be.
func checkOutputFile(option, file, lost string, r *Report) ExecReport {
	dir := filepath.Dir(file)
	er := ExecReport{Kind: option, Name: file, Path: dir}
	fail := func(msg, fix string) ExecReport {
		er.Detail = msg
		r.add(Problem, "hooks", fmt.Sprintf("--%s %s: %s: %s", option, file, msg, lost), fix)
		return er
	}
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return fail(fmt.Sprintf("directory %s: %v", dir, unwrapPath(err)),
			"create the directory in the image or mount a volume there")
	case !fi.IsDir():
		return fail(dir+" is not a directory", "point --"+option+" into a directory")
	}
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		return fail("it is a directory", "name a file, not a directory")
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fail(fmt.Sprintf("directory %s is not writable: %v", dir, err),
			"point --"+option+" at a writable volume (an emptyDir, a tmpfs or a bind mount)")
	}
	er.OK, er.Detail = true, "directory "+dir+" writable"
	return er
}

// checkCommand finds and checks the child's command as the supervisor will.
func checkCommand(cfg *Config, r *Report) ExecReport {
	er := ExecReport{Kind: "command"}
	if len(cfg.Argv) == 0 {
		er.OK, er.Detail = true, "none given: not checked (give it after the options, as the container would)"
		return er
	}
	er.Name = cfg.Argv[0]
	env := cfg.pathEnv()
	path, err := supervisor.LookPath(cfg.Argv[0], env)
	if err != nil {
		where := "the default PATH"
		if len(env) > 0 {
			where = env[0]
		}
		er.Detail = "not found in " + where
		r.add(Problem, "command", fmt.Sprintf("%q is not found in %s: the container would exit 127", cfg.Argv[0], where),
			"install it in the image, or give its full path")
		return er
	}
	er.Path = path
	var iss *issue
	er.Detail, iss = program(path, env, 0)
	er.OK = iss == nil
	if iss != nil {
		r.add(Problem, "command", fmt.Sprintf("%s: the container would exit %d", iss.msg, iss.code), iss.fix)
	}
	return er
}

// typeName names the type of a file that is not a regular one.
func typeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}
