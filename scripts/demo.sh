#!/usr/bin/env bash
# The main job, the way a new user meets it: a busybox image made from Debian's busybox-static is imported,
# `vessel run --rm` prints a greeting from inside a container, and a detached container is listed, logged
# and removed. The first `vessel` command starts vesseld in the background (/run/vessel/vessel.sock), as it
# would on any fresh machine; it keeps running afterwards, like any container engine's daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/vessel-demo.XXXXXX)
trap 'bin/vessel rm -f vessel-demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
tests/fixtures/busybox-rootfs.sh "$work/rootfs"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .

step() { printf '\n\033[1m$ %s\033[0m\n' "${*/#bin\//}"; "$@"; }
step bin/vessel import "$work/busybox.tar" busybox:demo
step bin/vessel run --rm busybox:demo sh -c 'echo "Hello from a Vessel container: pid $$ on $(hostname), $(grep ^CapEff /proc/self/status)"'
step bin/vessel run -d --name vessel-demo busybox:demo sh -c 'echo "started at $(date)"; exec sleep 1000'
step bin/vessel ps
step bin/vessel logs vessel-demo
step bin/vessel rm -f vessel-demo
