# Maintainer tasks. Building and testing need only the go command (README,
# CONTRIBUTING.md); make is for releases.
#
#   make release VERSION=1.2.3   build every release artefact into dist/, then verify them
#   make release-check           build a release twice from HEAD in two clones, compare,
#                                and try it in dockerd, a Debian root and qemu (as CI does)

VERSION ?=
DIST ?= dist
# The Go toolchain of release builds, and of tools/release itself (its gzip
# output is in the images and packages): the go command fetches it from the
# module proxy when the machine has another, so that a release can be rebuilt
# byte for byte anywhere. Move it forward with go.mod's go line.
GO_TOOLCHAIN ?= go1.26.8

.PHONY: release release-check

release:
	@test -n '$(VERSION)' || { echo 'usage: make release VERSION=1.2.3' >&2; exit 2; }
	GOTOOLCHAIN='$(GO_TOOLCHAIN)' go run ./tools/release build -version '$(VERSION)' -out '$(DIST)' -toolchain '$(GO_TOOLCHAIN)'
	GOTOOLCHAIN='$(GO_TOOLCHAIN)' go run ./tools/release verify -version '$(VERSION)' -dir '$(DIST)'

release-check:
	bash tools/release/check.sh
