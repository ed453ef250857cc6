package hooks

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// shell runs command hooks.
const shell = "/bin/sh"

// Dir returns a hook for every executable regular file in dir, in lexical
// (byte) order of the names, each run directly with argv {path}, so that it
// works in images without a shell. Names starting with "." and directories
// are skipped silently; symbolic links are followed (Kubernetes ConfigMap
// volumes consist of them). Any other entry that cannot be run (not
// executable, not a regular file, a dangling link) is skipped and reported
// in the returned errors for the caller to log. The error is non-nil only
// when dir itself cannot be read.
func Dir(dir string) ([]Hook, []error, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, nil, fmt.Errorf("read hook directory: %w", err)
	}
	var (
		hooks   []Hook
		skipped []error
	)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		if fi.IsDir() {
			continue
		}
		if err := checkExecutable(path, fi); err != nil {
			skipped = append(skipped, err)
			continue
		}
		hooks = append(hooks, Hook{Name: name, Path: path, Argv: []string{path}})
	}
	return hooks, skipped, nil
}

// checkExecutable says why the file at path, described by fi, cannot be
// executed by this process, naming the path.
func checkExecutable(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file (%s)", path, typeName(fi.Mode()))
	}
	// access(2) rather than the mode bits: it also knows about ownership
	// and noexec mounts. spotinit does not change its ids, so the real ids
	// it checks are the effective ones.
	if err := unix.Access(path, unix.X_OK); err != nil {
		return fmt.Errorf("%s: not executable (mode %s): %w", path, fi.Mode().Perm(), err)
	}
	return nil
}

// CheckDir checks at start-up that dir exists, is a directory and can be
// listed, with an error that names dir and the problem. The files in it are
// looked at only by Dir.
func CheckDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("hook directory %s: %w", dir, errnoOf(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("hook directory %s: %w", dir, syscall.ENOTDIR)
	}
	// Listing needs read permission, running the files search permission.
	if err := unix.Access(dir, unix.R_OK|unix.X_OK); err != nil {
		return fmt.Errorf("hook directory %s: %w", dir, err)
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("hook directory %s: %w", dir, errnoOf(err))
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("hook directory %s: %w", dir, errnoOf(err))
	}
	return nil
}

// CheckShell checks at start-up, when command hooks are configured, that
// /bin/sh exists and can be executed, with an error that names it and the
// problem.
func CheckShell() error { return checkProgram(shell) }

// checkProgram is CheckShell for any path (tests cannot take /bin/sh away).
func checkProgram(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, errnoOf(err))
	}
	return checkExecutable(path, fi)
}

// errnoOf strips the *PathError around an errno, whose message would
// repeat the path and name the system call; other errors pass unchanged.
func errnoOf(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// typeName names the type of a file that is neither regular nor a directory.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}
