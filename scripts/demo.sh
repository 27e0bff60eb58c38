#!/usr/bin/env bash
# The main job: a container from a local image. Until the daemon arrives this is vessel-runc on a
# busybox root filesystem made from Debian's busybox-static.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/vessel-demo.XXXXXX)
trap 'bin/vessel-runc --root "$work/state" delete --force demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
tests/fixtures/busybox-rootfs.sh "$work/bundle/rootfs"
( cd "$work/bundle" && "$OLDPWD/bin/vessel-runc" spec )
jq '.process.terminal=false | .process.args=["/bin/sh","-c","echo Hello from a Vessel container: pid $$ on $(hostname), $(cat /proc/self/status | grep ^CapEff)"]' \
  "$work/bundle/config.json" > "$work/config.json" && mv "$work/config.json" "$work/bundle/config.json"
bin/vessel-runc --root "$work/state" run --bundle "$work/bundle" demo
