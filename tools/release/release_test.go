package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckVersion(t *testing.T) {
	for _, tc := range []struct {
		v   string
		ok  bool
		deb string
	}{
		{"1.2.3", true, "1.2.3"},
		{"0.1.0", true, "0.1.0"},
		{"10.20.30", true, "10.20.30"},
		{"1.2.3-rc.1", true, "1.2.3~rc.1"},
		{"0.0.0-check", true, "0.0.0~check"},
		{"v1.2.3", false, ""},
		{"1.2", false, ""},
		{"01.2.3", false, ""},
		{"1.2.3-rc-1", false, ""}, // a second "-" would be read as a Debian revision
		{"1.2.3+build", false, ""},
		{"1.2.3-", false, ""},
		{"1.2.3 ", false, ""},
		{"", false, ""},
	} {
		err := checkVersion(tc.v)
		if (err == nil) != tc.ok {
			t.Errorf("checkVersion(%q) = %v, want ok=%v", tc.v, err, tc.ok)
		}
		if tc.ok && debVersion(tc.v) != tc.deb {
			t.Errorf("debVersion(%q) = %q, want %q", tc.v, debVersion(tc.v), tc.deb)
		}
	}
}

func TestArtefacts(t *testing.T) {
	want := []string{
		"spotinit_1.2.3-rc.1_linux_amd64", "spotinit_1.2.3-rc.1_linux_amd64.cdx.json", "spotinit_1.2.3-rc.1_linux_amd64.image.tar",
		"spotinit_1.2.3-rc.1_linux_arm64", "spotinit_1.2.3-rc.1_linux_arm64.cdx.json", "spotinit_1.2.3-rc.1_linux_arm64.image.tar",
		"spotinit_1.2.3~rc.1_amd64.deb", "spotinit_1.2.3~rc.1_arm64.deb",
	}
	if got := artefacts("1.2.3-rc.1"); !slices.Equal(got, want) {
		t.Errorf("artefacts = %q\nwant %q", got, want)
	}
}

func TestWithEnv(t *testing.T) {
	got := withEnv([]string{"A=1", "GOFLAGS=-buildmode=pie", "B=2", "GOFLAGS=-x"}, "GOFLAGS=", "C=3")
	if want := []string{"A=1", "B=2", "GOFLAGS=", "C=3"}; !slices.Equal(got, want) {
		t.Errorf("withEnv = %q, want %q", got, want)
	}
}

func TestCheckReplaceable(t *testing.T) {
	dir := t.TempDir()
	if err := checkReplaceable(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a missing directory: %v", err)
	}
	for _, f := range []string{"SHA256SUMS", "spotinit_1.2.3_amd64.deb"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := checkReplaceable(dir); err != nil {
		t.Errorf("a release directory: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkReplaceable(dir); err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("a directory with other files: %v, want an error naming notes.txt", err)
	}
}

// testImage writes an image of a fake binary as build would, and returns
// the image's path and the binary's.
func testImage(t *testing.T, version, arch string, created time.Time) (image, bin string, data []byte) {
	t.Helper()
	dir := t.TempDir()
	bin = filepath.Join(dir, "spotinit")
	binData := []byte("\x7fELF not really")
	if err := os.WriteFile(bin, binData, 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := buildImage(imageSpec{arch: arch, version: version, commit: "0123abcd", created: created,
		files: []layerFile{
			{name: "spotinit", mode: 0o755, data: binData},
			{name: "LICENSE", mode: 0o644, data: imageLicence([]byte("licence\n"), []byte("notices\n"))},
		}})
	if err != nil {
		t.Fatal(err)
	}
	image = filepath.Join(dir, "image.tar")
	if err := os.WriteFile(image, img, 0o644); err != nil {
		t.Fatal(err)
	}
	return image, bin, img
}

func TestImage(t *testing.T) {
	when := time.Unix(1796394283, 0)
	for _, arch := range arches {
		image, bin, a := testImage(t, "1.2.3", arch, when)
		if err := verifyImage(image, bin, arch, "1.2.3", []byte("licence\n")); err != nil {
			t.Errorf("%s: %v", arch, err)
		}
		_, _, b := testImage(t, "1.2.3", arch, when)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two images of the same inputs differ", arch)
		}
		_, _, c := testImage(t, "1.2.3", arch, when.Add(time.Second))
		if bytes.Equal(a, c) {
			t.Errorf("%s: the creation time is not in the image", arch)
		}
		files, err := readTarBytes(a)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for n := range files {
			names = append(names, n)
		}
		slices.Sort(names)
		if len(names) != 6 || names[3] != "index.json" || names[4] != "manifest.json" || names[5] != "oci-layout" {
			t.Errorf("%s: the tarball holds %q: want 3 blobs, index.json, manifest.json, oci-layout", arch, names)
		}
	}
}

// TestVerifyImageFails is the negative control of TestImage: verifyImage
// notices a wrong binary, tag, architecture or licence.
func TestVerifyImageFails(t *testing.T) {
	image, bin, _ := testImage(t, "1.2.3", "amd64", time.Unix(0, 0))
	other := filepath.Join(t.TempDir(), "other")
	if err := os.WriteFile(other, []byte("another binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"binary":  verifyImage(image, other, "amd64", "1.2.3", nil),
		"version": verifyImage(image, bin, "amd64", "1.2.4", nil),
		"arch":    verifyImage(image, bin, "arm64", "1.2.3", nil),
		"licence": verifyImage(image, bin, "amd64", "1.2.3", []byte("another licence\n")),
	} {
		if err == nil {
			t.Errorf("a wrong %s passed", name)
		}
	}
}

func TestManPage(t *testing.T) {
	help := "NAME:\n   spotinit - an init\n.starts with a dot\n'and a quote\nC:\\path --flag\n"
	m := manPage("1.2.3", time.Unix(1796394283, 0), help)
	for _, want := range []string{
		`.TH SPOTINIT 1 "2026-12-04" "spotinit 1.2.3" "User Commands"`,
		`   spotinit \- an init`,
		`\&.starts with a dot`,
		`\&'and a quote`,
		`C:\epath \-\-flag`,
	} {
		if !strings.Contains(m, "\n"+want+"\n") && !strings.HasPrefix(m, want+"\n") {
			t.Errorf("the man page lacks the line %q:\n%s", want, m)
		}
	}
}

func TestDebCopyright(t *testing.T) {
	c := string(debCopyright(time.Unix(1796394283, 0)))
	for _, want := range []string{"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n",
		"\nCopyright: 2026 The spotinit authors\n", "\nLicense: Apache-2.0\n Licensed under",
		` found in "/usr/share/common-licenses/Apache-2.0".` + "\n"} {
		if !strings.Contains(c, want) {
			t.Errorf("copyright lacks %q:\n%s", want, c)
		}
	}
	if c := string(debCopyright(time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC))); !strings.Contains(c, "\nCopyright: 2026-2028 ") {
		t.Errorf("a 2028 release's copyright:\n%s", c)
	}
}

func TestDebChangelog(t *testing.T) {
	c := string(debChangelog("1.2.3-rc.1", time.Unix(1796394283, 0)))
	for _, want := range []string{"spotinit (1.2.3~rc.1) unstable; urgency=medium\n\n",
		"\n -- " + debMaintainer + "  Fri, 04 Dec 2026 14:24:43 +0000\n"} {
		if !strings.Contains(c, want) {
			t.Errorf("changelog lacks %q:\n%s", want, c)
		}
	}
}

// TestSBOMBuildList checks that addBuildList keeps the linked modules as
// they are and adds the rest of the build list as excluded components, and
// that verifySBOM holds an SBOM to both lists.
func TestSBOMBuildList(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sbom.json")
	linked := buildModule{"golang.org/x/sys", "v0.50.0"}
	doc := `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[` +
		`{"bom-ref":"` + modulePURL(linked) + `","type":"library","name":"golang.org/x/sys","version":"v0.50.0","scope":"required","purl":"` + modulePURL(linked) + `"}]}`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	mods := []buildModule{{"github.com/creack/pty", "v1.1.24"}, linked}
	if err := addBuildList(path, mods); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var bom cdxBOM
	if err := json.Unmarshal(b, &bom); err != nil {
		t.Fatal(err)
	}
	want := []cdxComponent{
		{Name: "github.com/creack/pty", Version: "v1.1.24", PURL: "pkg:golang/github.com/creack/pty@v1.1.24?type=module", Scope: "excluded"},
		{Name: "golang.org/x/sys", Version: "v0.50.0", PURL: modulePURL(linked), Scope: "required"},
	}
	if !slices.Equal(bom.Components, want) || bom.BOMFormat != "CycloneDX" {
		t.Errorf("components %+v, want %+v", bom.Components, want)
	}
	again := filepath.Join(dir, "again.json")
	if err := os.WriteFile(again, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := addBuildList(again, mods); err != nil {
		t.Fatal(err)
	}
	if c, _ := os.ReadFile(again); !bytes.Equal(b, c) {
		t.Error("two runs of addBuildList differ")
	}
}
