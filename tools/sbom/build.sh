#!/usr/bin/env bash
# build.sh OUTDIR: builds CycloneDX's SBOM generator for Go binaries,
# cyclonedx-gomod, at the version pinned in this directory's go.mod, to
# OUTDIR/cyclonedx-gomod and prints the binary's path. It needs only Go and
# the module proxy.
#
# The generator lives in this separate tools module so that it never enters
# spotinit's own go.mod; tools/release runs it on every release binary.
# -trimpath: its own hash is recorded in every SBOM it writes, so it must not
# depend on where the module cache is.
set -euo pipefail

if [[ $# -ne 1 || -z $1 ]]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
mkdir -p -- "$1"
out="$(cd -- "$1" && pwd)/cyclonedx-gomod"

cd -- "$(dirname -- "${BASH_SOURCE[0]}")"
# GOWORK=off: a go.work above this directory must not pull spotinit in.
# -mod=readonly: go.sum is the pin; a build never rewrites it.
GOWORK=off CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false -o "$out" \
	github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod
echo "$out"
