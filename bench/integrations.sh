#!/usr/bin/env bash
# Times `ctr run --rm` (containerd's runc v2 shim) and `podman run --rm` (conmon) of /bin/true with vessel-runc,
# crun and runc, in one run, and writes docs/benchmarks/integrations.md (linked from docs/benchmarks.md).
# Private containerd and podman stores under /tmp/vessel-bench-integ.*, removed at the end. Needs root,
# hyperfine, containerd, podman, runc, crun (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs=${BENCH_INTEGRATION_RUNS:-10}
work=$(mktemp -d /tmp/vessel-bench-integ.XXXXXX)
ns=vessel-bench-$(basename "$work" | tr -dc 'a-zA-Z0-9' | tail -c 6)
out=docs/benchmarks/integrations.md
ctd_pid=
cleanup() {
  set +e
  if [ -n "$ctd_pid" ]; then
    for c in $(ctr -a "$work/ctd.sock" -n "$ns" c ls -q 2>/dev/null); do
      ctr -a "$work/ctd.sock" -n "$ns" task kill -a -s KILL "$c" >/dev/null 2>&1; sleep 0.2
      ctr -a "$work/ctd.sock" -n "$ns" task rm -f "$c" >/dev/null 2>&1; ctr -a "$work/ctd.sock" -n "$ns" c rm "$c" >/dev/null 2>&1
    done
    kill "$ctd_pid"; wait "$ctd_pid" 2>/dev/null
  fi
  "${podman[@]}" rm -af >/dev/null 2>&1; "${podman[@]}" system reset --force >/dev/null 2>&1
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    for d in "$h$ns" "${h}vessel-bench-podman"; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  done
  grep -F "$work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# crun 1.8 refuses the hybrid cgroup layout unless cgroup2 is out of sight (as in bench/run.sh).
cat > "$work/crun" <<'SH'
#!/bin/sh
if grep -q ' /sys/fs/cgroup/unified ' /proc/self/mountinfo; then
  exec unshare -m sh -c 'umount /sys/fs/cgroup/unified && exec crun "$@"' crun "$@"
fi
exec crun "$@"
SH
chmod +x "$work/crun"

tests/fixtures/busybox-rootfs.sh "$work/rootfs"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .

cat > "$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime_supports_json = ["vessel-runc", "crun", "runc"]
[engine.runtimes]
vessel-runc = ["$repo/bin/vessel-runc"]
crun = ["$work/crun"]
runc = ["/usr/bin/runc"]
CONF
export CONTAINERS_CONF="$work/containers.conf"
podman=(podman --root "$work/podman/root" --runroot "$work/podman/runroot" --tmpdir "$work/podman/tmp" --storage-driver overlay)
"${podman[@]}" import "$work/rootfs.tar" localhost/busybox:bench >/dev/null
"${podman[@]}" save --format oci-archive -o "$work/image.tar" localhost/busybox:bench 2>/dev/null

cat > "$work/config.toml" <<TOML
version = 2
root = "$work/ctd/root"
state = "$work/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/ctd.sock"
[ttrpc]
  address = "$work/ctd.sock.ttrpc"
[debug]
  address = "$work/ctd-debug.sock"
TOML
containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
ctd_pid=$!
for _ in $(seq 50); do ctr -a "$work/ctd.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr -a "$work/ctd.sock" -n "$ns" images import --base-name localhost/busybox "$work/image.tar" >/dev/null

ctr_cmd() { echo "ctr -a $work/ctd.sock -n $ns run --rm --runc-binary $1 --runc-root $work/runc-root localhost/busybox:bench c-$2 /bin/true"; }
podman_cmd() { echo "${podman[*]} run --rm --network none --cgroup-parent /vessel-bench-podman --runtime $1 localhost/busybox:bench /bin/true"; }

hyperfine -N --warmup 2 --runs "$runs" --export-json "$work/ctr.json" \
  -n vessel-runc "$(ctr_cmd "$repo/bin/vessel-runc" v)" -n crun "$(ctr_cmd "$work/crun" c)" -n runc "$(ctr_cmd /usr/bin/runc r)" >&2
hyperfine -N --warmup 2 --runs "$runs" --export-json "$work/podman.json" \
  -n vessel-runc "$(podman_cmd vessel-runc)" -n crun "$(podman_cmd crun)" -n runc "$(podman_cmd runc)" >&2

mkdir -p docs/benchmarks
python3 - "$work/ctr.json" "$work/podman.json" "$runs" > "$out" <<'PY'
import json, sys, platform, subprocess, datetime
def ver(cmd):
    try: return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except Exception: return "?"
print("# Benchmarks: vessel-runc under containerd and podman\n")
print(f"Written by `bench/integrations.sh` (part of `make bench`) on {datetime.date.today()} ({platform.node()}, "
      f"{subprocess.run(['nproc'],capture_output=True,text=True).stdout.strip()} cores, kernel {platform.release()}). "
      "Wall-clock time of the whole engine command for `/bin/true` in a busybox image, measured by hyperfine; "
      "the ratio is peer median / vessel-runc median (above 1 means Vessel is faster). "
      "The runtime is only part of what is measured: the engine, shim or conmon, image mounts and cleanup are the rest.\n")
for title, path in [("`ctr run --rm` (containerd, runc v2 shim, `--runc-binary`)", sys.argv[1]),
                    ("`podman run --rm --network none` (conmon, `--runtime`)", sys.argv[2])]:
    data = {r["command"]: r for r in json.load(open(path))["results"]}
    v = data["vessel-runc"]["median"]
    print(f"## {title}, {sys.argv[3]} runs\n")
    print("| runtime | median (ms) | mean (ms) | peer ÷ vessel-runc |\n|---|---|---|---|")
    for name in ["vessel-runc", "crun", "runc"]:
        r = data[name]
        print(f"| {name} | {r['median']*1000:.1f} | {r['mean']*1000:.1f} | {r['median']/v:.2f} |")
    print()
print(f"Versions: {ver(['containerd','--version'])}; {ver(['podman','--version'])}; {ver(['runc','--version'])}; {ver(['crun','--version'])}.")
print("crun runs through a wrapper that unshares a mount namespace and unmounts the hybrid cgroup2 mount (crun 1.8 refuses the hybrid layout); that costs it a few ms.")
PY
cat "$out"
bench/assemble.sh
