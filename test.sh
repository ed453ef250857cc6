#!/usr/bin/env bash
# The whole test suite: what CI runs after installing the dependencies
# (.ci/run). Every stage runs, and prints its result when it ends: passed,
# FAILED, or skipped and why; a summary of all of them comes last. The run
# fails when a stage failed and, under CI (SPOTINIT_CI=1, which .ci/run
# sets), when a stage was skipped: CI must not pass without running what it
# claims to run. docs/testing.md describes the stages and the switches.
set -uo pipefail
cd "$(dirname "$0")"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# skip REASON ends the running stage as skipped.
skip() {
	printf '%s\n' "$*" >"$out/skip-reason"
	exit 77
}

# gotest LOG ARGS... runs go test -v ARGS with the whole output in LOG and
# prints each test's result line; the whole log when it fails. A test that
# skipped makes the stage skipped, with the test's reason.
gotest() {
	local log=$1 rc=0
	shift
	go test -v "$@" >"$log" 2>&1 || rc=$?
	grep -E '^\s*--- (PASS|FAIL|SKIP)' "$log" || true
	if [ "$rc" != 0 ]; then
		cat "$log"
		return "$rc"
	fi
	if grep -qE '^\s*--- SKIP' "$log"; then
		# A skipped test's reason is the last line it logged; go test -v
		# names the test whose output follows in its === lines.
		skip "$(awk '
			/^=== (RUN|CONT|NAME) / { cur = $3; next }
			/^ *--- SKIP: / { printf "%s%s: %s", sep, $3, last[$3]; sep = "; "; next }
			/^ +[^ ]+_test\.go:[0-9]+: / { l = $0; sub(/^ +[^ ]+_test\.go:[0-9]+: /, "", l); last[cur] = l }
		' "$log")"
	fi
}

# digest KEY prints what a failed stage's output says about the failure:
# each failing test or script step with the lines before it, and any panic.
# The summary repeats it at the very end of the run, so that a log cut to
# its head and tail (as CI excerpts are) still names the cause.
digest() {
	local lines
	lines=$(grep -E -B12 -A3 -- '^\s*--- FAIL|^\s*FAIL: [^ ]+\.txtar:[0-9]+:|^panic: |^FAIL\s' "$out/stage-$1.log" |
		grep -vE '^\s*--- (PASS|SKIP)|^=== (RUN|PAUSE|CONT|NAME) ' | tail -n 120) || true
	printf '\n-- %s failed:\n%s\n' "$1" "${lines:-(no test failure lines: see the stage output above)}"
}

results=()
passed=0 failed=0 skipped=0
only=("$@")

# stage KEY NAME FUNCTION runs FUNCTION in a subshell that stops at its
# first failing command, and records the result. With arguments, test.sh
# runs only the stages whose keys they name: ./test.sh vet race.
stage() {
	local key=$1 name=$2 fn=$3 start=$SECONDS rc result
	if [ ${#only[@]} -gt 0 ] && ! [[ " ${only[*]} " == *" $key "* ]]; then
		return
	fi
	printf '\n== %s: %s\n' "$key" "$name"
	rm -f "$out/skip-reason"
	(
		set -euo pipefail
		"$fn"
	) 2>&1 | tee "$out/stage-$key.log"
	rc=${PIPESTATUS[0]}
	case $rc in
	0)
		result=passed
		passed=$((passed + 1))
		;;
	77)
		result="skipped: $(cat "$out/skip-reason")"
		skipped=$((skipped + 1))
		;;
	*)
		result="FAILED (exit $rc)"
		failed=$((failed + 1))
		digest "$key" >>"$out/digest"
		;;
	esac
	printf -- '-- %s: %s in %ds\n' "$key" "$result" $((SECONDS - start))
	results+=("$(printf '%-12s %4ds  %s' "$key" $((SECONDS - start)) "$result")")
}

gofmt_stage() {
	local unformatted
	unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
	if [ -n "$unformatted" ]; then
		echo "gofmt needed: $unformatted"
		return 1
	fi
}

tidy_stage() { go mod tidy -diff; }

vet_stage() { go vet ./...; }

staticcheck_stage() { go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...; }

race_stage() {
	# Everything but what later stages run on their own: the end-to-end
	# suite and TestBuilds.
	SPOTINIT_E2E= go test -race -timeout 15m -skip '^TestBuilds$' $(go list ./... | grep -v '/e2e$')
}

e2e_stage() {
	[ "${SPOTINIT_E2E:-}" = 1 ] || skip "SPOTINIT_E2E is not 1 (.ci/run sets it; the suite needs root, dockerd and runc)"
	go test -count=1 -v -timeout 10m ./e2e/
}

hard_stage() {
	SPOTINIT_HARD=full gotest "$out/hard.log" -count=1 -timeout 15m -run '^TestHard' .
}

stress_stage() {
	go run ./stress fuzz -fuzztime 5s
	go run ./stress imds-faults -duration 60s
	# A SIGTERM swept over spotinit's first 15 ms, as PID 1 and not, beside
	# the floor program (the least a Go init can do): 143 at every step once
	# spotinit has had 5 ms of CPU, or three times what the floor needed on
	# this machine if that is more; never anything but 143, exit 2, killed
	# or dropped (docs/performance.md has the full sweep). TestInitOrder
	# (race stage) checks what runs before earlysignal on any machine.
	go run ./stress startup-window -step 1ms -runs 3 -floor build
}

cross_stage() {
	local arch file_info
	for arch in amd64 arm64; do
		CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -tags urfave_cli_no_docs \
			-ldflags="-s -w -E=_spotinit_rt0 -X main.version=ci" -o "$out/spotinit-$arch" .
		file_info=$(head -c 20 "$out/spotinit-$arch" | od -An -tx1 | tr -d ' \n')
		echo "spotinit-$arch: $(du -h "$out/spotinit-$arch" | cut -f1) ELF ${file_info:0:8}"
	done
}

builds_stage() {
	# The scripts mostly wait (ten seconds of IMDS polling each): run more
	# of them at once than there are cores.
	SPOTINIT_BUILDS=all gotest "$out/builds.log" -count=1 -timeout 15m -parallel 4 -run '^TestBuilds$' .
}

# smoke BINARY [EMULATOR]: the built binary's version, its exit statuses for
# no arguments, a child named -h and a child's own code.
smoke() {
	local bin=$1 emu=${2:-} no_args dash_h seven
	[ -x "$bin" ] || { echo "no $bin: the cross stage builds it"; return 1; }
	export AWS_EC2_METADATA_DISABLED=true # never the real IMDS address
	$emu "$bin" --version | grep -q '^spotinit version ci$'
	set +e
	$emu "$bin" >/dev/null 2>&1
	no_args=$?
	$emu "$bin" -- -h >/dev/null 2>&1
	dash_h=$?
	$emu "$bin" sh -c 'exit 7' 2>/dev/null
	seven=$?
	set -e
	[ "$no_args" = 125 ] || { echo "no arguments: exit $no_args, want 125"; return 1; }
	[ "$dash_h" = 127 ] || { echo "child named -h: exit $dash_h, want 127"; return 1; }
	[ "$seven" = 7 ] || { echo "child exit 7: exit $seven"; return 1; }
	echo "$bin${emu:+ under $emu}: --version, no arguments 125, child -h 127, child's exit 7"
}

smoke_amd64_stage() { smoke "$out/spotinit-amd64"; }

smoke_arm64_stage() {
	command -v qemu-aarch64-static >/dev/null ||
		skip "qemu-aarch64-static is not installed (Debian: qemu-user-static; .ci/run installs it)"
	smoke "$out/spotinit-arm64" qemu-aarch64-static
}

release_stage() { bash tools/release/check.sh; }

echo "switches: SPOTINIT_CI=${SPOTINIT_CI:-} SPOTINIT_REQUIRE_PIDNS=${SPOTINIT_REQUIRE_PIDNS:-}" \
	"SPOTINIT_REQUIRE_TOOLS=${SPOTINIT_REQUIRE_TOOLS:-} SPOTINIT_REQUIRE_AEMM=${SPOTINIT_REQUIRE_AEMM:-}" \
	"SPOTINIT_E2E=${SPOTINIT_E2E:-}"

stage gofmt "formatting (gofmt -l)" gofmt_stage
stage tidy "go mod tidy -diff" tidy_stage
stage vet "go vet ./..." vet_stage
stage staticcheck "staticcheck ./... (honnef.co/go/tools v0.8.2)" staticcheck_stage
stage race "go test -race, every package but e2e (TestBuilds has its own stage)" race_stage
stage e2e "end-to-end in dockerd and runc (e2e/, SPOTINIT_E2E=1; about a minute)" e2e_stage
stage hard "hardening at full size: exit statuses under orphans, signal and fork storms, 10,000 orphans at once" hard_stage
stage stress "stress, briefly: every fuzz target, IMDS cycling through its faults, the start-up signal sweep" stress_stage
stage cross "cross-builds (README build, CGO_ENABLED=0, linux/amd64 and linux/arm64)" cross_stage
stage builds "every build users make (README, plain, PIE, PIE with stub, arm64 under qemu): smoke scripts" builds_stage
stage smoke-amd64 "smoke runs of the cross-built binary, amd64" smoke_amd64_stage
stage smoke-arm64 "smoke runs of the cross-built binary, arm64 under qemu-aarch64-static" smoke_arm64_stage
stage release "release: make release twice, byte-identical; image, .deb and arm64 binary in use (tools/release/check.sh)" release_stage

printf '\n== summary\n'
printf '%s\n' "${results[@]}"
printf '%d passed, %d failed, %d skipped in %dm%02ds\n' "$passed" "$failed" "$skipped" $((SECONDS / 60)) $((SECONDS % 60))
if [ "$failed" -gt 0 ]; then
	printf "\n== what failed (each stage's whole output is above)\n"
	cat "$out/digest"
	echo "FAILED"
	exit 1
fi
if [ "$skipped" -gt 0 ] && [ "${SPOTINIT_CI:-}" = 1 ]; then
	echo "FAILED: SPOTINIT_CI=1 and $skipped stage(s) skipped: CI must run every stage"
	exit 1
fi
if [ "$skipped" -gt 0 ]; then
	echo "passed, with $skipped stage(s) skipped"
else
	echo "all stages passed"
fi
