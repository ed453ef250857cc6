package main

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// noticesName is the file that carries the licences and notices of what is
// linked into spotinit, beside LICENSE in the image and in the .deb's doc
// directory.
const noticesName = "THIRD_PARTY_NOTICES"

// Licence and notice files, in the order they are looked for in a module.
var (
	licenceFiles = []string{"LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "COPYING"}
	noticeFiles  = []string{"NOTICE", "NOTICE.txt", "NOTICE.md"}
)

// linkedModules are the modules in a binary's build list, as go version -m
// shows them: with a replacement, the module that was really built.
func linkedModules(bin string) ([]*debug.Module, *buildinfo.BuildInfo, error) {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", bin, err)
	}
	var mods []*debug.Module
	for _, m := range bi.Deps {
		if m.Replace != nil {
			m = m.Replace
		}
		mods = append(mods, m)
	}
	return mods, bi, nil
}

// notices is the text of THIRD_PARTY_NOTICES for bin: the licence of the Go
// standard library and runtime, then of each module linked in, with its
// NOTICE where it has one (the Apache License asks that these travel with
// the binary). The texts come from the toolchain and the module cache.
func (r *release) notices(bin, goVersion string) ([]byte, error) {
	mods, _, err := linkedModules(bin)
	if err != nil {
		return nil, err
	}
	goroot, err := output(r.repo, r.goEnv(nil), "go", "env", "GOROOT")
	if err != nil {
		return nil, err
	}
	dirs, err := r.moduleDirs(mods)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "spotinit %s is built with %s and statically links the Go standard\n"+
		"library and runtime and the Go modules below. Their licences and notices\n"+
		"follow; spotinit's own licence is in LICENSE.\n", r.version, goVersion)
	section := func(title, dir string) error {
		fmt.Fprintf(&b, "\n%s\n%s\n", strings.Repeat("=", 78), title)
		for _, group := range []struct {
			names    []string
			required bool
		}{{licenceFiles, true}, {noticeFiles, false}} {
			name, text, err := firstFile(dir, group.names)
			if err != nil {
				return err
			}
			if name == "" && group.required {
				return fmt.Errorf("%s: no licence file (%s) in %s", title, strings.Join(group.names, ", "), dir)
			}
			if name == "" {
				continue
			}
			fmt.Fprintf(&b, "%s\n-- %s --\n\n%s", strings.Repeat("-", 78), name, text)
			if !bytes.HasSuffix(text, []byte("\n")) {
				b.WriteByte('\n')
			}
		}
		return nil
	}
	if err := section("Go standard library and runtime ("+goVersion+")", goroot); err != nil {
		return nil, err
	}
	for _, m := range mods {
		if err := section(m.Path+" "+m.Version, dirs[m.Path+"@"+m.Version]); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// moduleDirs finds each module's directory in the module cache, downloading
// it if needed (the build already has).
func (r *release) moduleDirs(mods []*debug.Module) (map[string]string, error) {
	args := []string{"mod", "download", "-json"}
	for _, m := range mods {
		args = append(args, m.Path+"@"+m.Version)
	}
	out, err := output(r.repo, r.goEnv(nil), "go", args...)
	if err != nil {
		return nil, err
	}
	dirs := map[string]string{}
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var m struct{ Path, Version, Dir, Error string }
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go mod download -json: %w", err)
		}
		if m.Error != "" || m.Dir == "" {
			return nil, fmt.Errorf("go mod download %s@%s: %s", m.Path, m.Version, m.Error)
		}
		dirs[m.Path+"@"+m.Version] = m.Dir
	}
	return dirs, nil
}

// firstFile returns the name and content of the first of names that exists
// in dir, or "" if none does.
func firstFile(dir string, names []string) (string, []byte, error) {
	for _, name := range names {
		text, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		return name, text, err
	}
	return "", nil, nil
}
