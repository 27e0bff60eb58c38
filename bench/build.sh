#!/usr/bin/env bash
# Build benchmark, both builders in the same run on the same Containerfile and context: a multi-stage build that
# compiles a small static C program with the gcc of a debootstrap base (tests/fixtures/debian-gcc.sh) and copies it
# into FROM scratch. Cold = every step runs (--no-cache; the base image is already unpacked for both), cached = an
# unchanged rebuild. Vessel: bin/vessel against a private bin/vesseld; buildah: `buildah bud --layers` with a
# private storage root, runc (crun refuses hybrid cgroups) and the host network (Vessel's RUN joins its default bridge,
# a veth per RUN, which only costs Vessel).
# Writes docs/benchmarks/build.md and reassembles docs/benchmarks.md. Needs root, hyperfine, buildah, debootstrap
# (scripts/setup.sh). BENCH_BUILD_RUNS (default 5) runs per command.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_BUILD_RUNS:-5}
work=$(mktemp -d /tmp/vessel-bench-build.XXXXXX)
daemon_pid=
B="buildah --root $work/buildah-root --runroot $work/buildah-run --storage-driver overlay"
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  $B rm --all >/dev/null 2>&1 || true
  $B rmi --all --force >/dev/null 2>&1 || true
  { grep -o " $work/[^ ]*" /proc/self/mountinfo || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
out=docs/benchmarks/build.md
fixture=$(tests/fixtures/debian-gcc.sh)

# Vessel: a daemon of its own, the base imported from the fixture tarball and unpacked by a first build.
bin/vesseld --socket "$work/v.sock" --root "$work/vessel" --run-root "$work/vessel-run" >"$work/vesseld.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$work/v.sock" ] && break; sleep 0.1; done
V="$PWD/bin/vessel -H unix://$work/v.sock"
$V import -c 'CMD ["bash"]' "$fixture/rootfs.tar.gz" localhost/debian-gcc:bench >/dev/null
# buildah: the same tarball as a one-layer image in its own storage.
c=$($B from scratch)
$B add "$c" "$fixture/rootfs.tar.gz" / >/dev/null
$B config --cmd bash "$c"
$B commit -q "$c" localhost/debian-gcc:bench >/dev/null
$B rm "$c" >/dev/null

mkdir -p "$work/ctx"
cat > "$work/ctx/Containerfile" <<'CF'
FROM localhost/debian-gcc:bench AS build
ARG CFLAGS=-O2
WORKDIR /src
COPY hello.c .
RUN gcc -static $CFLAGS -o /hello hello.c && strip /hello
FROM scratch
LABEL org.opencontainers.image.title=hello
COPY --from=build /hello /hello
ENTRYPOINT ["/hello"]
CF
printf '#include <stdio.h>\nint main(void) { puts("hello from a static binary"); return 0; }\n' > "$work/ctx/hello.c"
vb="$V build -q -t bench/hello:1 $work/ctx"
bb="$B bud --runtime /usr/sbin/runc --network host --layers -q -t bench/hello:1 $work/ctx"
# Warm both (the base snapshot unpacked, caches filled) and check the results run.
$vb >/dev/null && $bb >/dev/null
[ "$($V run --rm bench/hello:1)" = "hello from a static binary" ] || { echo "build.sh: vessel's image does not run" >&2; exit 1; }

hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/cold.json" \
  -n vessel "$V build --no-cache -q -t bench/hello:1 $work/ctx" \
  -n buildah "$B bud --runtime /usr/sbin/runc --network host --layers --no-cache -q -t bench/hello:1 $work/ctx" >&2
hyperfine -N --warmup 1 --runs "$((runs * 2))" --export-json "$work/cached.json" \
  -n vessel "$vb" -n buildah "$bb" >&2
$V build -t bench/hello:1 "$work/ctx" 2>"$work/cached-progress.txt" >/dev/null

python3 - "$work/cold.json" "$work/cached.json" "$runs" "$work/ctx/Containerfile" "$work/cached-progress.txt" > "$out" <<'PY'
import json, sys, platform, subprocess, datetime
cold, cached, runs, cf, progress = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
def ver(cmd):
    try: return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except Exception: return "?"
def table(path):
    data = {r["command"]: r for r in json.load(open(path))["results"]}
    v = data["vessel"]["median"]
    print("| builder | median (ms) | mean (ms) | σ (ms) | buildah ÷ vessel |\n|---|---|---|---|---|")
    for name in ["vessel", "buildah"]:
        r = data[name]
        print(f"| {name} | {r['median']*1000:.0f} | {r['mean']*1000:.0f} | {r['stddev']*1000:.0f} | {r['median']/v:.2f} |")
nproc = subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()
print("## Builds: a multi-stage gcc build into FROM scratch\n")
print(f"Written by `make bench` (`bench/build.sh`) on {datetime.date.today()} ({platform.node()}, {nproc} cores, kernel {platform.release()}), "
      "both builders in the same invocation, one warm-up each; the ratio column is buildah's median ÷ Vessel's (above 1 means Vessel is faster). "
      "Both start from the same one-layer Debian bookworm minbase + gcc image (`tests/fixtures/debian-gcc.sh`), already unpacked. The Containerfile:\n")
print("```dockerfile\n" + open(cf).read().strip() + "\n```\n")
print(f"### Cold build (`--no-cache`: every step runs), {runs} runs\n")
table(cold)
print(f"\n### Unchanged rebuild (every step cached), {int(runs)*2} runs\n")
table(cached)
print("\n- **vessel**: `vessel build -q` against a private `vesseld` (the CLI sends the context as a tar stream; RUN steps are Vessel containers "
      "on an overlay of the parent's snapshots, layers gzip level 'fastest'; the times include the CLI, the API and writing the image).")
print("- **buildah**: `buildah bud --layers -q` with a private storage root (overlay driver), `--runtime runc` (crun refuses this host's hybrid "
      "cgroups), `--network host` (Vessel's RUN joins its default bridge, a veth pair per RUN, which only Vessel pays).")
print("- The machine is shared (2 cores, other builds running): expect tens of percent of noise; the ratios come from one invocation.")
print("\nVessel's progress for the cached rebuild:\n\n```\n" + "\n".join(l for l in open(progress).read().splitlines() if l.strip()) + "\n```")
print(f"\nVersions: {ver(['buildah','--version'])}; {ver(['/usr/sbin/runc','--version'])}.")
PY
bench/assemble.sh
cat "$out"
