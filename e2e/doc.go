// Package e2e tests spotinit in a real container engine: the static binary
// as the ENTRYPOINT of images that dockerd runs, and as PID 1 of a runc
// container with a read-only root, driven the way ECS and Docker drive them
// (docker stop -t T: SIGTERM, T seconds, SIGKILL; runc kill ID TERM).
//
// The package has tests only. They run with SPOTINIT_E2E=1 (.ci/run sets it)
// and skip, saying so, without it. With it they need root, dockerd, docker,
// runc, git, Debian's python3 in /usr/bin and ps (procps); anything missing,
// or an engine that does not start, fails them: CI can never pass without
// them running.
//
// What they build, all under one scratch directory:
//
//   - spotinit, with the README's build line;
//   - a root filesystem of symlinks (bin, lib, lib64, sbin -> usr/...) with
//     spotinit at /spotinit, examples/python/app.py at /app, its hooks at
//     /pre-stop.d and the test apps of testdata/ at /e2e; the containers get
//     the host's /usr read-only, for python3 and ps. It is imported as an
//     image whose configuration is the python stage of Dockerfile.example
//     (its ENV lines, ENTRYPOINT ["/spotinit", "--"], CMD python3 /app/app.py)
//     and used as a runc bundle;
//   - for spotinit --check, a FROM scratch image: spotinit, a hook
//     directory with a #!/bin/sh script and one with a static binary, no
//     shell;
//   - a dockerd of their own (own data root, exec root and socket, no
//     bridge, no iptables), whose log they read;
//   - for Dockerfile.example, a Go builder image (the host's Go toolchain, a
//     shell, and a file:// module proxy copied from the host's module cache)
//     and a Python base stand-in, so that the legacy builder can build both
//     targets without a registry or network.
//
// They never pull (docker run --pull=never), never touch a daemon, image or
// container they did not create, never contact the real IMDS (the notice
// tests run a simulator from package simulator on the host's loopback, which
// the container reaches with --network host), and synchronise on what the
// containers print, never on sleeps. Everything is removed at the end, also
// after an interrupt; a run that was killed outright is cleaned up by the
// next one (its scratch directory names its owner's pid).
package e2e
