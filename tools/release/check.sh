#!/usr/bin/env bash
# check.sh: proves that releases are reproducible and work where users put
# them (make release-check; the last stage of test.sh). As root, on Debian
# with git, make, dpkg-deb, debootstrap, lintian, qemu-user-static and docker.io
# (.ci/run installs them); anything missing fails the check, nothing is
# skipped.
#
#  1. Clones HEAD twice, into directories of different names and depths, and
#     runs `make release VERSION=...` in each.
#  2. Compares the two dist/ directories byte for byte, and checks
#     SHA256SUMS with sha256sum -c. (make release has already run
#     `tools/release verify`: static, stripped binaries stamped with the
#     version; SBOMs listing exactly the modules linked in; images and .debs
#     holding the binary.) lintian checks both .debs.
#  3. Runs the arm64 binary's smoke test under qemu-aarch64-static, and the
#     amd64 one natively: --version, no arguments -> 125, a child named -h
#     -> 127, a child's exit status passed through.
#  4. Checks what --version says of the builds users make without make
#     release: a plain go build, and go install module@version (from a
#     file:// module proxy holding HEAD as that version).
#  5. Runs the release tests of e2e/ (TestRelease*) in a dockerd of their
#     own: the image through docker load and a downstream Dockerfile's
#     COPY --from, with a stop, its hooks and the stop report; the .deb
#     through apt install in a debootstrap --variant=minbase root made
#     meanwhile from the host's mirror.
#
# It prints each step with its result and ends with "N passed, N failed".
# SPOTINIT_CHECK_KEEP=1 keeps the scratch directory.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
version=0.0.0-check
start=$SECONDS
passed=0
failed=0

head=$(git -C "$repo" rev-parse HEAD)
work=$(mktemp -d /tmp/spotinit-release-check.XXXXXX)
deboot_pid=
cleanup() {
	set +e # clean up as far as possible, whatever fails
	if [[ -n $deboot_pid ]] && kill -0 "$deboot_pid" 2>/dev/null; then
		kill -- -"$deboot_pid" 2>/dev/null # its process group: wget, dpkg
		wait "$deboot_pid" 2>/dev/null
	fi
	# debootstrap mounts proc and sys in its target while it works.
	grep -o " $work/[^ ]*" /proc/self/mountinfo | sort -r | while read -r mp; do
		umount -l "$mp"
	done
	if [[ ${SPOTINIT_CHECK_KEEP:-} == 1 ]]; then
		echo "release-check: kept $work"
	else
		rm -rf "$work"
	fi
}
# The script's own status, not cleanup's, is its exit status; an interrupt
# or a TERM goes through the same cleanup.
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# step NAME COMMAND...: runs one step in a subshell with errexit (which bash
# ignores in a condition), prints its result and time, and counts it.
step() {
	local name=$1 t=$SECONDS rc
	shift
	printf -- '-- %s\n' "$name"
	set +e
	(set -e; "$@")
	rc=$?
	set -e
	if [[ $rc == 0 ]]; then
		passed=$((passed + 1))
		printf -- '-- ok: %s (%ds)\n' "$name" $((SECONDS - t))
	else
		failed=$((failed + 1))
		printf -- '-- FAILED: %s (%ds)\n' "$name" $((SECONDS - t))
	fi
}

need_tools() {
	local missing=()
	for tool in git make dpkg-deb debootstrap lintian qemu-aarch64-static dockerd docker sha256sum cmp apt-get go; do
		command -v "$tool" >/dev/null || missing+=("$tool")
	done
	if [[ ${#missing[@]} -gt 0 ]]; then
		echo "missing: ${missing[*]} (apt-get install git make debootstrap lintian qemu-user-static docker.io)"
		return 1
	fi
	if [[ $(id -u) != 0 ]]; then
		echo "not root: dockerd and debootstrap need root"
		return 1
	fi
	if [[ -n $(git -C "$repo" status --porcelain) ]]; then
		echo "note: the working tree has changes; the check builds the commit HEAD, without them"
	fi
}

# The Debian root for the .deb, made in the background while the releases
# build, from the mirror of the host's own release that apt uses.
start_debootstrap() {
	local codename mirror
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' |
		awk -v c="$codename" '$2 == c { print $1; exit }')
	if [[ -z $codename || -z $mirror ]]; then
		echo "no mirror for the host's release '$codename' among apt's sources (apt-get update first)"
		return 1
	fi
	echo "debootstrap --variant=minbase $codename from $mirror, in the background"
	# In a process group of its own, so that cleanup can stop all of it.
	setsid debootstrap --variant=minbase "$codename" "$work/debroot" "$mirror" >"$work/debootstrap.log" 2>&1 &
	deboot_pid=$!
}

wait_debootstrap() {
	local t=$SECONDS rc=0
	wait "$deboot_pid" || rc=$?
	deboot_pid=
	if [[ $rc != 0 ]]; then
		tail -20 "$work/debootstrap.log"
		echo "-- FAILED: debootstrap (status $rc)"
		return 1
	fi
	echo "-- ok: debootstrap done ($((SECONDS - start))s since the start; waited $((SECONDS - t))s for it)"
}

# release DIR: a clone of HEAD at DIR and make release in it.
release() {
	git clone -q --no-hardlinks --no-checkout "$repo" "$1"
	git -C "$1" checkout -q --detach "$head"
	git -C "$1" log -1 --format='commit %H (%cI)'
	make -C "$1" --no-print-directory release VERSION="$version" 2>&1 | sed 's/^/  /'
	return "${PIPESTATUS[0]}"
}

a=$work/a/spotinit
b=$work/bb/elsewhere/spotinit-too

compare() {
	local fa fb n=0 differ=0
	fa=$(cd "$a/dist" && ls)
	fb=$(cd "$b/dist" && ls)
	if [[ $fa != "$fb" ]]; then
		echo "the two releases hold different files:"
		diff <(echo "$fa") <(echo "$fb") || true
		return 1
	fi
	for f in $fa; do
		n=$((n + 1))
		if cmp -s "$a/dist/$f" "$b/dist/$f"; then
			echo "  identical: $f"
		else
			echo "  DIFFERENT: $f"
			differ=$((differ + 1))
		fi
	done
	echo "$((n - differ)) of $n files byte-identical"
	[[ $differ == 0 ]]
}

sums() {
	(cd "$a/dist" && sha256sum --strict -c SHA256SUMS)
}

# smoke BINARY [RUNNER]: the CI smoke test of a release binary.
smoke() {
	local bin=$1 code
	shift
	local out
	out=$("$@" "$bin" --version)
	echo "$out" | sed 's/^/  /'
	grep -qx "spotinit version $version" <<<"$(head -1 <<<"$out")" || { echo "first line is not 'spotinit version $version'"; return 1; }
	grep -qx 'entry stub: yes' <<<"$out" || { echo "no entry stub"; return 1; }
	set +e
	"$@" "$bin" >/dev/null 2>&1
	code=$?
	[[ $code == 125 ]] || { echo "no arguments: exit $code, want 125"; set -e; return 1; }
	"$@" "$bin" -- -h >/dev/null 2>&1
	code=$?
	[[ $code == 127 ]] || { echo "a child named -h: exit $code, want 127"; set -e; return 1; }
	"$@" "$bin" --imds off sh -c 'exit 7' 2>/dev/null
	code=$?
	[[ $code == 7 ]] || { echo "a child's exit 7: exit $code"; set -e; return 1; }
	set -e
	echo "  no arguments -> 125, a child named -h -> 127, a child's exit 7 -> 7"
}

# debs_lint: Debian's package checker on both packages; an error or a
# warning fails the step (the package overrides the one tag it earns on
# purpose, statically-linked-binary).
debs_lint() {
	local deb
	for deb in "$a"/dist/*.deb; do
		echo "  lintian $(basename "$deb")"
		lintian --fail-on error,warning --allow-root "$deb" 2>&1 | sed 's/^/    /'
		[[ ${PIPESTATUS[0]} == 0 ]] || return 1
	done
}

# plain_builds: what --version says of a plain go build (no stub, no stamp,
# -buildvcs=false as CI sets it) and of go install module@version.
plain_builds() {
	local out proxy mod=github.com/spotinit/spotinit modver=v$version
	(cd "$a" && GOFLAGS=-buildvcs=false go build -o "$work/plain" .)
	out=$("$work/plain" --version)
	echo "$out" | sed 's/^/  go build: /'
	[[ $(head -1 <<<"$out") == "spotinit version dev" ]] || { echo "plain go build: want 'spotinit version dev' first"; return 1; }
	grep -qx 'entry stub: no' <<<"$out" || { echo "plain go build: want 'entry stub: no'"; return 1; }

	# A module proxy holding HEAD as $modver: git archive, without the
	# nested tools modules (a module zip never holds another module).
	proxy=$work/goproxy
	mkdir -p "$proxy/$mod/@v"
	echo "$modver" >"$proxy/$mod/@v/list"
	printf '{"Version":"%s","Time":"%s"}\n' "$modver" "$(git -C "$a" log -1 --format=%cI)" >"$proxy/$mod/@v/$modver.info"
	cp "$a/go.mod" "$proxy/$mod/@v/$modver.mod"
	(cd "$a" && git archive --format=zip --prefix="$mod@$modver/" -o "$proxy/$mod/@v/$modver.zip" HEAD -- . \
		':(exclude)tools/aemm' ':(exclude)tools/sbom')
	# A module cache of its own, so that the made-up version never enters
	# the machine's; the machine's downloads serve the dependencies.
	GOBIN=$work/gobin GOFLAGS=-modcacherw GOMODCACHE=$work/modcache GONOSUMDB=$mod \
		GOPROXY="file://$proxy,file://$(go env GOMODCACHE)/cache/download,$(go env GOPROXY)" \
		go install "$mod@$modver"
	out=$("$work/gobin/spotinit" --version)
	echo "$out" | sed 's/^/  go install: /'
	[[ $(head -1 <<<"$out") == "spotinit version $version" ]] || { echo "go install $mod@$modver: want 'spotinit version $version' first"; return 1; }
	grep -qx 'entry stub: no' <<<"$out" || { echo "go install: want 'entry stub: no'"; return 1; }
}

# e2e_release: the e2e release tests, each required to pass.
e2e_release() {
	local log=$work/e2e.log rc=0
	(cd "$a" && SPOTINIT_E2E=1 SPOTINIT_RELEASE_DIST="$a/dist" SPOTINIT_RELEASE_VERSION="$version" \
		SPOTINIT_RELEASE_DEBROOT="$work/debroot" \
		go test -count=1 -v -timeout 10m -run '^TestRelease' ./e2e/) >"$log" 2>&1 || rc=$?
	grep -E '^(=== RUN|--- |\s+release_test|e2e:|ok|FAIL|PASS)' "$log" | sed 's/^/  /'
	for t in TestReleaseImage TestReleaseDeb; do
		grep -q "^--- PASS: $t " "$log" || { echo "$t did not pass"; rc=1; }
	done
	if [[ $rc != 0 ]]; then
		echo "the whole log: "
		sed 's/^/  | /' "$log" | tail -80
	fi
	return "$rc"
}

step "tools and privileges" need_tools
if [[ $failed != 0 ]]; then
	printf 'release-check: %d passed, %d failed\n' "$passed" "$failed"
	exit 1
fi
# Not a step: the background job must belong to this shell, to be waited for.
start_debootstrap || failed=$((failed + 1))
step "make release in $a" release "$a"
step "make release in $b" release "$b"
step "the two releases are byte-identical" compare
step "sha256sum -c SHA256SUMS" sums
step "lintian on the .debs" debs_lint
step "amd64 smoke test" smoke "$a/dist/spotinit_${version}_linux_amd64"
step "arm64 smoke test under qemu-aarch64-static" smoke "$a/dist/spotinit_${version}_linux_arm64" qemu-aarch64-static
step "--version of a plain go build and of go install" plain_builds
if [[ -n $deboot_pid ]]; then
	printf -- '-- the Debian root\n'
	if wait_debootstrap; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
fi
step "e2e: docker load, COPY --from, apt install (TestRelease*)" e2e_release
printf '\nrelease-check: took %ds\n' $((SECONDS - start))
printf 'release-check: %d passed, %d failed\n' "$passed" "$failed"
[[ $failed == 0 ]]
