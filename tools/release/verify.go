package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
)

func cmdVerify(args []string) error {
	fl := flag.NewFlagSet("verify", flag.ContinueOnError)
	version := fl.String("version", "", "release version (required)")
	dir := fl.String("dir", "dist", "directory that build wrote")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 0 {
		return fmt.Errorf("verify: unexpected arguments %q", fl.Args())
	}
	if err := checkVersion(*version); err != nil {
		return err
	}
	// The image's /LICENSE is compared with the repository's when verify
	// runs in a checkout, as make runs it.
	// So is every SBOM with go.mod's build list.
	var licence []byte
	var mods []buildModule
	if root, err := repoRoot(); err == nil {
		if licence, err = os.ReadFile(filepath.Join(root, "LICENSE")); err != nil {
			return err
		}
		if mods, err = buildList(root, withEnv(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off")); err != nil {
			return err
		}
	}
	if err := verify(*dir, *version, licence, mods); err != nil {
		return err
	}
	logf("verified %s: %d artefacts and %s", *dir, len(artefacts(*version)), sumsName)
	return nil
}

// verify checks everything a release directory must hold; the first problem
// found is the error.
// licence, when not nil, is what the images' /LICENSE must begin with;
// mods, when not nil, is the build list every SBOM must list.
func verify(dir, version string, licence []byte, mods []buildModule) error {
	if err := verifySums(dir, version); err != nil {
		return err
	}
	for _, arch := range arches {
		bin := filepath.Join(dir, binName(version, arch))
		if err := verifyBinary(bin, arch, version); err != nil {
			return err
		}
		if err := verifySBOM(filepath.Join(dir, sbomName(version, arch)), bin, version, mods); err != nil {
			return err
		}
		if err := verifyImage(filepath.Join(dir, imageName(version, arch)), bin, arch, version, licence); err != nil {
			return err
		}
		if err := verifyDeb(filepath.Join(dir, debName(version, arch)), bin, arch, version); err != nil {
			return err
		}
	}
	return nil
}

// verifySums checks that SHA256SUMS names exactly the release's artefacts,
// that nothing else is in dir, and that every checksum holds.
func verifySums(dir, version string) error {
	b, err := os.ReadFile(filepath.Join(dir, sumsName))
	if err != nil {
		return err
	}
	var listed []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			return fmt.Errorf("%s: line %q is not in sha256sum's format", sumsName, sc.Text())
		}
		got, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("%s: %w", sumsName, err)
		}
		if got != sum {
			return fmt.Errorf("%s: %s has SHA-256 %s, the list says %s", sumsName, name, got, sum)
		}
		listed = append(listed, name)
	}
	if want := artefacts(version); !slices.Equal(listed, want) {
		return fmt.Errorf("%s lists %q, want %q", sumsName, listed, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != sumsName && !slices.Contains(listed, e.Name()) {
			return fmt.Errorf("%s holds %s, which %s does not list", dir, e.Name(), sumsName)
		}
	}
	return nil
}

// elfMachine is the ELF machine of each release architecture.
var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// verifyBinary checks that bin is a static, stripped ELF executable for arch,
// built the release's way, as its build information records it.
func verifyBinary(bin, arch, version string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	name := filepath.Base(bin)
	if f.Machine != elfMachine[arch] || f.Type != elf.ET_EXEC {
		return fmt.Errorf("%s: ELF %v %v, want an executable for %v", name, f.Machine, f.Type, elfMachine[arch])
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("%s: has %v: not static", name, p.Type)
		}
	}
	if f.Section(".symtab") != nil {
		return fmt.Errorf("%s: has a symbol table: not stripped", name)
	}
	_, bi, err := linkedModules(bin)
	if err != nil {
		return err
	}
	// Exactly the settings of a release build: anything else (-race,
	// -gcflags, GOEXPERIMENT, -pgo, vcs.*) came from the environment.
	want := map[string]string{
		"-buildmode": "exe", "-compiler": "gc", "-trimpath": "true", "-tags": buildTags,
		"CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": arch,
		"GOAMD64": "v1", "GOARM64": "v8.0", // the one of arch
		"DefaultGODEBUG": "", // from main.go's //go:debug lines
	}
	seen := map[string]bool{}
	for _, s := range bi.Settings {
		w, ok := want[s.Key]
		if !ok || (w != "" && s.Value != w) || (s.Key == "GOAMD64" && arch != "amd64") || (s.Key == "GOARM64" && arch != "arm64") {
			return fmt.Errorf("%s: built with %s=%q, which a release build does not set", name, s.Key, s.Value)
		}
		seen[s.Key] = true
	}
	for _, k := range []string{"-buildmode", "-trimpath", "-tags", "CGO_ENABLED", "GOOS", "GOARCH"} {
		if !seen[k] {
			return fmt.Errorf("%s: the build information lacks %s", name, k)
		}
	}
	if bi.Path != "github.com/spotinit/spotinit" {
		return fmt.Errorf("%s: main package %s", name, bi.Path)
	}
	// -trimpath keeps -ldflags out of the build information: what the
	// linker was told shows in what the binary says of itself.
	return verifyVersionOutput(bin, arch, version, bi.GoVersion)
}

// qemuUser runs binaries of the other release architecture (binfmt_misc
// need not be set up: qemu is run explicitly).
var qemuUser = map[string]string{"amd64": "qemu-x86_64-static", "arm64": "qemu-aarch64-static"}

// verifyVersionOutput runs bin --version, natively or under qemu, and checks
// that it reports the release's version, the entry stub and a non-PIE build.
func verifyVersionOutput(bin, arch, version, goVersion string) error {
	name := filepath.Base(bin)
	argv := []string{bin, "--version"}
	if arch != runtime.GOARCH {
		q, err := exec.LookPath(qemuUser[arch])
		if err != nil {
			logf("warning: %s --version not run: no %s here", name, qemuUser[arch])
			return nil
		}
		argv = append([]string{q}, argv...)
	}
	out, err := output(".", nil, argv[0], argv[1:]...)
	if err != nil {
		return err
	}
	lines := strings.Split(out, "\n")
	for _, want := range []string{"entry stub: yes", "pie: no", "go: " + goVersion + " linux/" + arch} {
		if !slices.Contains(lines, want) {
			return fmt.Errorf("%s --version says %q, want a line %q", name, out, want)
		}
	}
	if lines[0] != "spotinit version "+version {
		return fmt.Errorf("%s --version says %q first, want %q", name, lines[0], "spotinit version "+version)
	}
	return nil
}

// cdxBOM is the part of a CycloneDX document that verify reads.
type cdxBOM struct {
	BOMFormat   string `json:"bomFormat"`
	SpecVersion string `json:"specVersion"`
	Metadata    struct {
		Component  cdxComponent `json:"component"`
		Properties []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"properties"`
	} `json:"metadata"`
	Components []cdxComponent `json:"components"`
}

type cdxComponent struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	PURL    string `json:"purl"`
	Scope   string `json:"scope"`
}

// verifySBOM checks that the SBOM describes bin (its SHA-256 and the
// release's version), that its required components are exactly the modules
// linked into bin, and that every other component is excluded; with mods,
// that it lists every module of that build list too.
func verifySBOM(path, bin, version string, mods []buildModule) error {
	name := filepath.Base(path)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var bom cdxBOM
	if err := json.Unmarshal(b, &bom); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion == "" {
		return fmt.Errorf("%s: bomFormat %q specVersion %q, want CycloneDX", name, bom.BOMFormat, bom.SpecVersion)
	}
	if c := bom.Metadata.Component; c.Name != "github.com/spotinit/spotinit" || c.Version != "v"+version {
		return fmt.Errorf("%s: describes %s %s, want github.com/spotinit/spotinit v%s", name, c.Name, c.Version, version)
	}
	sum, err := fileSHA256(bin)
	if err != nil {
		return err
	}
	hashed := false
	for _, p := range bom.Metadata.Properties {
		if p.Name == "cdx:gomod:binary:hash:SHA-256" {
			if p.Value != sum {
				return fmt.Errorf("%s: describes a binary with SHA-256 %s, %s has %s", name, p.Value, filepath.Base(bin), sum)
			}
			hashed = true
		}
	}
	if !hashed {
		return fmt.Errorf("%s: no SHA-256 of the binary", name)
	}
	linked, _, err := linkedModules(bin)
	if err != nil {
		return err
	}
	if len(linked) == 0 {
		return fmt.Errorf("%s: no modules in the build information", filepath.Base(bin))
	}
	var want, got []string
	for _, m := range linked {
		want = append(want, m.Path+"@"+m.Version)
	}
	all := map[string]bool{}
	for _, c := range bom.Components {
		all[c.Name+"@"+c.Version] = true
		if !strings.HasPrefix(c.PURL, "pkg:golang/"+c.Name+"@"+c.Version) {
			return fmt.Errorf("%s: component %s@%s has purl %q", name, c.Name, c.Version, c.PURL)
		}
		switch c.Scope {
		case "", "required":
			got = append(got, c.Name+"@"+c.Version)
		case "excluded":
		default:
			return fmt.Errorf("%s: component %s@%s has scope %q, want required or excluded", name, c.Name, c.Version, c.Scope)
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s lists as required %q; %s links %q", name, got, filepath.Base(bin), want)
	}
	for _, m := range mods {
		if !all[m.Path+"@"+m.Version] {
			return fmt.Errorf("%s does not list %s@%s of go.mod's build list", name, m.Path, m.Version)
		}
	}
	return nil
}

// verifyImage checks the image tarball: docker load's manifest.json and the
// OCI index name the same blobs, every blob has the digest and size its
// descriptors say, the config's diff ID is the layer's, and the layer holds
// exactly the binary and the licence, which carries the notices.
func verifyImage(path, bin, arch, version string, licence []byte) error {
	name := filepath.Base(path)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
	files, err := readTar(path)
	if err != nil {
		return fail("%v", err)
	}
	for n, b := range files {
		if digest, ok := strings.CutPrefix(n, "blobs/sha256/"); ok && digestOf(b) != "sha256:"+digest {
			return fail("blob %s has digest %s", n, digestOf(b))
		}
	}
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		return fail("oci-layout is %q", files["oci-layout"])
	}
	var dms []dockerManifest
	if err := json.Unmarshal(files["manifest.json"], &dms); err != nil {
		return fail("manifest.json: %v", err)
	}
	tags := imageTags(version, arch)
	if len(dms) != 1 || !slices.Equal(dms[0].RepoTags, tags) || len(dms[0].Layers) != 1 {
		return fail("manifest.json is %s, want one image tagged %s with one layer", files["manifest.json"], strings.Join(tags, " and "))
	}
	var idx index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		return fail("index.json: %v", err)
	}
	if len(idx.Manifests) != len(tags) {
		return fail("index.json lists %d manifests, want one per tag (%d)", len(idx.Manifests), len(tags))
	}
	md := idx.Manifests[0]
	for i, d := range idx.Manifests {
		if d.Digest != md.Digest || d.Platform == nil || *d.Platform != platformOf(arch) ||
			"docker.io/library/"+tags[i] != d.Annotations["io.containerd.image.name"] ||
			imageRepo+":"+d.Annotations["org.opencontainers.image.ref.name"] != tags[i] {
			return fail("index.json's manifest %d: %+v, want %s for %s", i, d, tags[i], arch)
		}
	}
	blob := func(d descriptor) ([]byte, error) {
		b, ok := files[blobPath(d.Digest)]
		if !ok || int64(len(b)) != d.Size {
			return nil, fmt.Errorf("blob %s missing or not %d bytes", d.Digest, d.Size)
		}
		return b, nil
	}
	mb, err := blob(md)
	if err != nil {
		return fail("%v", err)
	}
	var man manifest
	if err := json.Unmarshal(mb, &man); err != nil {
		return fail("manifest: %v", err)
	}
	if man.Config.MediaType != mediaConfig || len(man.Layers) != 1 || man.Layers[0].MediaType != mediaLayer {
		return fail("manifest: %s", mb)
	}
	if blobPath(man.Config.Digest) != dms[0].Config || blobPath(man.Layers[0].Digest) != dms[0].Layers[0] {
		return fail("manifest.json and the OCI manifest name different blobs")
	}
	cb, err := blob(man.Config)
	if err != nil {
		return fail("%v", err)
	}
	var cfg imageConfig
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return fail("config: %v", err)
	}
	lb, err := blob(man.Layers[0])
	if err != nil {
		return fail("%v", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(lb))
	if err != nil {
		return fail("layer: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return fail("layer: %v", err)
	}
	if cfg.Architecture != arch || cfg.OS != "linux" || len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != digestOf(raw) {
		return fail("config %s does not match the layer (diff ID %s) or %s", cb, digestOf(raw), arch)
	}
	layer, err := readTarBytes(raw)
	if err != nil {
		return fail("layer: %v", err)
	}
	var names []string
	for n := range layer {
		names = append(names, n)
	}
	sort.Strings(names)
	if want := []string{"LICENSE", "spotinit"}; !slices.Equal(names, want) {
		return fail("layer holds %q, want %q", names, want)
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	if !bytes.Equal(layer["spotinit"], binary) {
		return fail("/spotinit is not %s", filepath.Base(bin))
	}
	if licence != nil && !bytes.HasPrefix(layer["LICENSE"], licence) {
		return fail("/LICENSE does not begin with the repository's LICENSE")
	}
	if !bytes.Contains(layer["LICENSE"], []byte("\n"+noticesName+"\n")) {
		return fail("/LICENSE lacks the third-party notices")
	}
	return nil
}

// readTar reads a tar file's regular files into memory.
func readTar(path string) (map[string][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return readTarBytes(b)
}

func readTarBytes(b []byte) (map[string][]byte, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if files[h.Name], err = io.ReadAll(tr); err != nil {
			return nil, err
		}
	}
}

// verifyDeb checks the package's control fields and that it installs the
// release binary as /usr/bin/spotinit, with dpkg-deb.
func verifyDeb(path, bin, arch, version string) error {
	name := filepath.Base(path)
	for field, want := range map[string]string{
		"Package": "spotinit", "Version": debVersion(version), "Architecture": arch,
		"Maintainer": debMaintainer, "Section": "admin", "Priority": "optional",
	} {
		got, err := output(".", nil, "dpkg-deb", "--field", path, field)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s: %s is %q, want %q", name, field, got, want)
		}
	}
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", name, err, stderr.String())
	}
	files, err := readTarBytes(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	if !bytes.Equal(files["./usr/bin/spotinit"], binary) {
		return fmt.Errorf("%s: ./usr/bin/spotinit is missing or not %s", name, filepath.Base(bin))
	}
	for _, f := range []string{"./usr/share/doc/spotinit/copyright", "./usr/share/man/man1/spotinit.1.gz"} {
		if len(files[f]) == 0 {
			return fmt.Errorf("%s: no %s", name, f)
		}
	}
	return nil
}
