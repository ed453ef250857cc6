#!/usr/bin/env bash
# build.sh OUTDIR: builds AWS's amazon-ec2-metadata-mock (AEMM), at the
# version pinned in this directory's go.mod, to OUTDIR/ec2-metadata-mock and
# prints the binary's path. It needs only Go and the module proxy.
#
# AEMM lives in this separate tools module so that it never enters
# spotinit's own go.mod; interruption/aemm_test.go runs the binary when
# SPOTINIT_AEMM_BIN names it.
set -euo pipefail

if [[ $# -ne 1 || -z $1 ]]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
mkdir -p -- "$1"
out="$(cd -- "$1" && pwd)/ec2-metadata-mock"

cd -- "$(dirname -- "${BASH_SOURCE[0]}")"
# GOWORK=off: a go.work above this directory must not pull spotinit in.
# -mod=readonly: go.sum is the pin; a build never rewrites it.
GOWORK=off CGO_ENABLED=0 go build -mod=readonly -trimpath -o "$out" \
	github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock
echo "$out"
