// Package atomicfile replaces a file so that a reader sees either the old
// content or the new, never a part: the new content goes to a temporary file
// in the same directory, which is then renamed over the path. It is how
// spotinit writes the notice file and the report file, which other
// processes (the app, a log shipper, a sidecar) read at any moment.
//
// It never follows a symlink: the temporary file is created exclusively (a
// symlink planted under its name makes the create fail), and rename(2)
// replaces a symlink at the path instead of writing through it.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data, atomically, mode 0644. The temporary
// file's name starts with "."+prefix and is removed when anything fails.
func Write(path, prefix string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+prefix+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// CheckDir reports whether Write could put a file at path: its directory
// exists and takes a new file (created and removed again, which also finds
// a read-only file system and, for root, what permission bits alone do
// not), and path is not a directory.
func CheckDir(path, prefix string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, unwrapPath(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	f, err := os.CreateTemp(dir, "."+prefix+"-*")
	if err != nil {
		return fmt.Errorf("directory %s is not writable: %w", dir, unwrapPath(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// unwrapPath drops the *PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
