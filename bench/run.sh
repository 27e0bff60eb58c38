#!/usr/bin/env bash
# Benchmarks vessel-runc against its peers in the same run and writes docs/benchmarks/runtime.md (a section of
# docs/benchmarks.md, reassembled by bench/assemble.sh) with ratios of medians.
# Needs root, hyperfine, runc and crun (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-50}
work=$(mktemp -d /tmp/vessel-bench.XXXXXX)
# runc and crun remove only the leaf of cgroupsPath; the bench removes the /vessel-bench parents they leave.
cleanup() { find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -depth -type d -path '*/vessel-bench*' -exec rmdir {} \; 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
out=docs/benchmarks/runtime.md
mkdir -p docs/benchmarks

tests/fixtures/busybox-rootfs.sh "$work/bundle/rootfs"
bin/vessel-runc spec --bundle "$work/bundle"
# The same bundle for every runtime: /bin/true, no terminal, its own cgroup; ociVersion 1.0.2 because crun 1.8 knows no later one.
jq '.ociVersion="1.0.2" | .process.terminal=false | .process.args=["/bin/true"] | .linux.cgroupsPath="/vessel-bench/c"' \
  "$work/bundle/config.json" > "$work/config.json" && mv "$work/config.json" "$work/bundle/config.json"

# crun 1.8 refuses this machine's hybrid cgroup layout unless cgroup2 is out of sight: run it in a private
# mount namespace with /sys/fs/cgroup/unified unmounted (only when that mount exists).
cat > "$work/crun" <<'SH'
#!/bin/sh
if grep -q ' /sys/fs/cgroup/unified ' /proc/self/mountinfo; then
  exec unshare -m sh -c 'umount /sys/fs/cgroup/unified && exec crun "$@"' crun "$@"
fi
exec crun "$@"
SH
chmod +x "$work/crun"

hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/run.json" \
  -n vessel-runc "bin/vessel-runc --root $work/vessel run --bundle $work/bundle bench" \
  -n crun "$work/crun --root $work/crun-state run --bundle $work/bundle bench" \
  -n runc "runc --root $work/runc run --bundle $work/bundle bench" >&2

python3 - "$work/run.json" "$runs" > "$out" <<'PY'
import json, sys, platform, subprocess, datetime
data = json.load(open(sys.argv[1]))["results"]
med = {r["command"]: r["median"] * 1000 for r in data}
mean = {r["command"]: r["mean"] * 1000 for r in data}
v = med["vessel-runc"]
def ver(cmd):
    try: return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except Exception: return "?"
print(f"## Runtime: `run` of `/bin/true`\n")
print(f"Written by `make bench` on {datetime.date.today()} ({platform.node()}, {subprocess.run(['nproc'],capture_output=True,text=True).stdout.strip()} cores, kernel {platform.release()}). "
      "Every peer runs in the same invocation on the same bundle; numbers are wall-clock times measured by hyperfine, "
      "and the ratio column is peer median / vessel-runc median (above 1 means Vessel is faster).\n")
print(f"Busybox bundle, new pid/net/ipc/uts/mount/cgroup namespaces, {sys.argv[2]} runs:\n")
print("| runtime | median (ms) | mean (ms) | peer ÷ vessel-runc |\n|---|---|---|---|")
for name in ["vessel-runc", "crun", "runc"]:
    print(f"| {name} | {med[name]:.1f} | {mean[name]:.1f} | {med[name]/v:.2f} |")
print(f"\nVersions: {ver(['runc','--version'])}; {ver(['crun','--version'])}.")
print("crun runs inside `unshare -m` with the hybrid cgroup2 mount unmounted (crun 1.8 refuses the hybrid layout); the `sh` and `unshare` it needs for that cost it about 1–2 ms.")
PY
bench/assemble.sh
cat "$out"
