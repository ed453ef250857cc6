package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"
	"time"
)

// The media types of an OCI image (image-spec v1.1).
const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// imageRepo is the repository name of the release image. docker load tags
// each architecture's image spotinit:VERSION and spotinit:VERSION-ARCH: the
// first is the one the README's COPY --from line names, and follows the
// tarball loaded last; the second always names one architecture, for builds
// of another architecture than the machine's and for machines that load
// both.
const imageRepo = "spotinit"

// imageTags are the tags of the image of arch, as docker load applies them.
func imageTags(version, arch string) []string {
	return []string{imageRepo + ":" + version, imageRepo + ":" + version + "-" + arch}
}

// imageLicence is the image's /LICENSE: spotinit's licence, then the
// licences and notices of what is linked into the binary, so that the image
// holds /spotinit and one licence file, and nothing else.
func imageLicence(licence, notices []byte) []byte {
	var b bytes.Buffer
	b.Write(licence)
	if !bytes.HasSuffix(licence, []byte("\n")) {
		b.WriteByte('\n')
	}
	b.WriteString("\n" + strings.Repeat("=", 78) + "\n" + noticesName + "\n\n")
	b.Write(notices)
	return b.Bytes()
}

// imageSpec is one release image: a single layer of files at the root of a
// FROM-scratch image for one architecture.
type imageSpec struct {
	arch, version, commit string
	created               time.Time
	files                 []layerFile
}

type layerFile struct {
	name string
	mode int64
	data []byte
}

// The JSON documents of the image. Struct fields marshal in declaration
// order and maps in key order, so the bytes are the same on every run.
type (
	descriptor struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Platform    *platform         `json:"platform,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	platform struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Variant      string `json:"variant,omitempty"`
	}
	index struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}
	manifest struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Config        descriptor        `json:"config"`
		Layers        []descriptor      `json:"layers"`
		Annotations   map[string]string `json:"annotations,omitempty"`
	}
	imageConfig struct {
		Created      string          `json:"created"`
		Architecture string          `json:"architecture"`
		OS           string          `json:"os"`
		Variant      string          `json:"variant,omitempty"`
		Config       containerConfig `json:"config"`
		RootFS       rootFS          `json:"rootfs"`
		History      []history       `json:"history"`
	}
	containerConfig struct {
		Entrypoint []string          `json:"Entrypoint"`
		Cmd        []string          `json:"Cmd"`
		Labels     map[string]string `json:"Labels"`
	}
	rootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	}
	history struct {
		Created   string `json:"created"`
		CreatedBy string `json:"created_by"`
	}
	// dockerManifest is one entry of manifest.json, the file docker load
	// reads (all versions; 25 and later also read index.json).
	dockerManifest struct {
		Config   string   `json:"Config"`
		RepoTags []string `json:"RepoTags"`
		Layers   []string `json:"Layers"`
	}
)

// buildImage returns the image as one tar stream in the form newer versions
// of docker save write: an OCI image layout (oci-layout, index.json,
// blobs/sha256/...) that OCI tools read, and a manifest.json naming the same
// blobs, which is all that docker load of Docker 20.10 (Debian 12's
// docker.io) understands. Every time in it is s.created, every owner root,
// and the entries are sorted, so the same inputs give the same bytes.
func buildImage(s imageSpec) ([]byte, error) {
	layer, diffID, err := layerTar(s.files, s.created)
	if err != nil {
		return nil, err
	}
	created := s.created.UTC().Format(time.RFC3339)
	labels := map[string]string{
		"org.opencontainers.image.title":       "spotinit",
		"org.opencontainers.image.description": "spotinit, an init for containers on EC2 Spot: copy /spotinit into your image",
		"org.opencontainers.image.version":     s.version,
		"org.opencontainers.image.revision":    s.commit,
		"org.opencontainers.image.source":      "https://github.com/spotinit/spotinit",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.created":     created,
	}
	plat := platformOf(s.arch)
	cfg, err := json.Marshal(imageConfig{
		Created: created, Architecture: plat.Architecture, OS: plat.OS, Variant: plat.Variant,
		// Run alone, the image says what it is; as an init it is copied
		// into other images.
		Config: containerConfig{Entrypoint: []string{"/spotinit"}, Cmd: []string{"--version"}, Labels: labels},
		RootFS: rootFS{Type: "layers", DiffIDs: []string{diffID}},
		History: []history{{Created: created,
			CreatedBy: "spotinit release " + s.version + ": /spotinit, /LICENSE"}},
	})
	if err != nil {
		return nil, err
	}
	cfgDesc := blobDescriptor(mediaConfig, cfg)
	layerDesc := blobDescriptor(mediaLayer, layer)
	man, err := json.Marshal(manifest{SchemaVersion: 2, MediaType: mediaManifest,
		Config: cfgDesc, Layers: []descriptor{layerDesc},
		Annotations: map[string]string{
			"org.opencontainers.image.created":  created,
			"org.opencontainers.image.version":  s.version,
			"org.opencontainers.image.revision": s.commit,
		}})
	if err != nil {
		return nil, err
	}
	// The index names the one manifest once per tag: containerd (and docker
	// with its image store) names the image after io.containerd.image.name,
	// OCI tools after ref.name.
	var named []descriptor
	for _, tag := range imageTags(s.version, s.arch) {
		d := blobDescriptor(mediaManifest, man)
		d.Platform = &plat
		d.Annotations = map[string]string{
			"io.containerd.image.name":          "docker.io/library/" + tag,
			"org.opencontainers.image.ref.name": strings.TrimPrefix(tag, imageRepo+":"),
		}
		named = append(named, d)
	}
	manDesc := named[0]
	idx, err := json.Marshal(index{SchemaVersion: 2, MediaType: mediaIndex, Manifests: named})
	if err != nil {
		return nil, err
	}
	dm, err := json.Marshal([]dockerManifest{{
		Config:   blobPath(cfgDesc.Digest),
		RepoTags: imageTags(s.version, s.arch),
		Layers:   []string{blobPath(layerDesc.Digest)},
	}})
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"oci-layout":               []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"index.json":               idx,
		"manifest.json":            dm,
		blobPath(cfgDesc.Digest):   cfg,
		blobPath(layerDesc.Digest): layer,
		blobPath(manDesc.Digest):   man,
	}
	return writeTree(files, []string{"blobs/", "blobs/sha256/"}, s.created)
}

// platformOf is the OCI platform of a Go architecture.
func platformOf(arch string) platform {
	p := platform{Architecture: arch, OS: "linux"}
	if arch == "arm64" {
		p.Variant = "v8"
	}
	return p
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func blobDescriptor(mediaType string, b []byte) descriptor {
	return descriptor{MediaType: mediaType, Digest: digestOf(b), Size: int64(len(b))}
}

// blobPath is where a blob lives in an OCI layout.
func blobPath(digest string) string { return "blobs/sha256/" + digest[len("sha256:"):] }

// layerTar returns the gzip-compressed layer and its diff ID (the digest of
// the uncompressed tar). gzip's header carries no name and no time; Go's
// compressor gives the same bytes for the same input and toolchain.
func layerTar(files []layerFile, mtime time.Time) (layer []byte, diffID string, err error) {
	sorted := append([]layerFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, f := range sorted {
		if err := tw.WriteHeader(fileHeader(f.name, f.mode, int64(len(f.data)), mtime)); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, "", err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), digestOf(raw.Bytes()), nil
}

// writeTree writes dirs and then files as one tar, in name order.
func writeTree(files map[string][]byte, dirs []string, mtime time.Time) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, d := range dirs {
		h := fileHeader(d, 0o755, 0, mtime)
		h.Typeflag = tar.TypeDir
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(fileHeader(n, 0o644, int64(len(files[n])), mtime)); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// fileHeader is a regular file owned by root, in the ustar format.
func fileHeader(name string, mode, size int64, mtime time.Time) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: size,
		ModTime: mtime.UTC().Truncate(time.Second), Format: tar.FormatUSTAR,
	}
}
