#!/usr/bin/env bash
# The whole test suite: what CI runs after installing the dependencies
# (.ci/run). Every stage must pass; the first failure stops the run.
set -euo pipefail
cd "$(dirname "$0")"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

stage() { printf '\n== %s\n' "$*"; }

stage "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted"; exit 1; fi

stage "go mod tidy"
go mod tidy -diff

stage "go vet"
go vet ./...

stage "staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

stage "go test -race"
# Without the end-to-end suite, which the next stage runs on its own.
SPOTINIT_E2E= go test -race -timeout 15m ./...

stage "end-to-end in dockerd and runc (e2e/, SPOTINIT_E2E=1; about a minute)"
if [ "${SPOTINIT_E2E:-}" = 1 ]; then
	go test -count=1 -v -timeout 10m ./e2e/
else
	echo "skipped: SPOTINIT_E2E is not 1 (.ci/run sets it; the suite needs root, dockerd and runc)"
fi

stage "hardening at full size: exit statuses under orphans, signal and fork storms"
SPOTINIT_HARD=full go test -count=1 -timeout 15m -run '^TestHard' -v . | grep -E '^(=== RUN|--- |\s+hard_test|ok|FAIL|PASS)'

stage "stress, briefly: every fuzz target, and IMDS cycling through its faults"
go run ./stress fuzz -fuzztime 5s
go run ./stress imds-faults -duration 60s

stage "cross-builds (CGO_ENABLED=0, linux/amd64 and linux/arm64)"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for arch in amd64 arm64; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -tags urfave_cli_no_docs \
		-ldflags="-s -w -E=_spotinit_rt0 -X main.version=ci" -o "$out/spotinit-$arch" .
	file_info=$(head -c 20 "$out/spotinit-$arch" | od -An -tx1 | tr -d ' \n')
	echo "spotinit-$arch: $(du -h "$out/spotinit-$arch" | cut -f1) ELF ${file_info:0:8}"
done

stage "smoke runs of the built binary"
bin="$out/spotinit-amd64"
"$bin" --version | grep -q '^spotinit version ci$'
set +e
"$bin" >/dev/null 2>&1; no_args=$?
"$bin" -- -h >/dev/null 2>&1; dash_h=$?
"$bin" sh -c 'exit 7' 2>/dev/null; seven=$?
set -e
[ "$no_args" = 125 ] || { echo "no arguments: exit $no_args, want 125"; exit 1; }
[ "$dash_h" = 127 ] || { echo "child named -h: exit $dash_h, want 127"; exit 1; }
[ "$seven" = 7 ] || { echo "child exit 7: exit $seven"; exit 1; }
if command -v qemu-aarch64-static >/dev/null; then
	"qemu-aarch64-static" "$out/spotinit-arm64" --version | grep -q '^spotinit version ci$'
	echo "arm64 binary runs under qemu-aarch64-static"
fi
echo "smoke runs passed"

stage "release: make release twice, byte-identical; image, .deb and arm64 binary in use (tools/release/check.sh)"
bash tools/release/check.sh

printf '\nall stages passed\n'
