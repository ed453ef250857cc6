// Command release builds spotinit's release artefacts and checks them.
//
//	go run ./tools/release build -version 1.2.3 [-out dist] [-sbom-tool PATH] [-toolchain go1.26.8]
//	go run ./tools/release verify -version 1.2.3 [-dir dist]
//
// make release VERSION=1.2.3 runs build, then verify. build writes, into a
// directory that holds nothing else afterwards:
//
//	spotinit_VERSION_linux_ARCH             static, stripped, -trimpath, entry stub, version and commit stamped
//	spotinit_VERSION_linux_ARCH.cdx.json    CycloneDX SBOM of that binary's modules (cyclonedx-gomod, tools/sbom)
//	spotinit_VERSION_linux_ARCH.image.tar   FROM-scratch image, tagged spotinit:VERSION: OCI layout and docker load's manifest.json
//	spotinit_DEBVERSION_ARCH.deb            Debian package: /usr/bin/spotinit, man page, copyright (dpkg-deb)
//	SHA256SUMS                              of every file above (sha256sum -c SHA256SUMS)
//
// for ARCH amd64 and arm64. DEBVERSION is VERSION with a pre-release's "-"
// turned into "~", so that 1.2.3~rc.1 sorts before 1.2.3 as in semver.
//
// Every artefact is reproducible: the same commit built with the same Go
// toolchain (pinned with -toolchain, which the go command fetches if the
// machine has another), generator and dpkg gives byte-identical files in any
// directory. Times come from SOURCE_DATE_EPOCH, else the commit's time;
// owners are root, modes fixed, entries sorted. tools/release/check.sh proves
// it by building twice.
//
// verify checks a directory that build wrote: the checksums, that each binary
// is static, stripped, for its architecture and stamped with the version;
// that each SBOM lists exactly the modules linked into its binary (from the
// binary's own build information, as go version -m reads it); that each
// image holds the binary, the licence and the notices and nothing else, with
// digests that agree; and that each .deb carries the binary as
// /usr/bin/spotinit with proper control fields.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "release: error: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("want a command: build or verify")
	}
	switch args[0] {
	case "build":
		return cmdBuild(args[1:])
	case "verify":
		return cmdVerify(args[1:])
	}
	return fmt.Errorf("unknown command %q: want build or verify", args[0])
}
