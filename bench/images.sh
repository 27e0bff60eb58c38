#!/usr/bin/env bash
# Image benchmarks, every peer in the same run: unpacking a Debian bookworm minbase layer (Vessel vs umoci vs
# GNU tar) and pulling that image from a local registry (Vessel vs skopeo). Writes docs/benchmarks/images.md
# and reassembles docs/benchmarks.md. Needs root, hyperfine, umoci, skopeo, docker-registry, debootstrap
# (scripts/setup.sh installs them). BENCH_IMAGE_RUNS (default 5) runs per command.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_IMAGE_RUNS:-5}
work=$(mktemp -d /tmp/vessel-bench-images.XXXXXX)
registry_pid=
cleanup() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
out=docs/benchmarks/images.md

fixture=$(tests/fixtures/debian-minbase.sh)
dotnet publish bench/Vessel.Bench -c Release -o .cache/publish/vessel-bench --nologo -v quiet
vb=$PWD/.cache/publish/vessel-bench/vessel-bench

# The image: the fixture tarball imported by our own code (RootfsImport re-gzips it into the store), exported
# as an OCI layout for umoci. One compressed layer blob serves all three unpackers.
"$vb" import-rootfs "$fixture/rootfs.tar.gz" bench/debian:minbase "$work/store" >&2
"$vb" export bench/debian:minbase "$work/layout" "$work/store" >&2
manifest=$(jq -r '.manifests[0].digest' "$work/layout/index.json")
layer_digest=$(jq -r '.layers[0].digest' "$work/layout/blobs/sha256/${manifest#sha256:}")
layer=$work/layout/blobs/sha256/${layer_digest#sha256:}

# A local registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1, storage in $work.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$port/v2/" >/dev/null || { cat "$work/registry.log" >&2; echo "images.sh: registry did not start" >&2; exit 1; }
ref=127.0.0.1:$port/bench/debian:minbase
"$vb" push bench/debian:minbase "$ref" "$work/store" >&2

# Unpack. Before each run the previous target is renamed into $work/trash (deleted at the end) and the
# page cache's dirty data is written back (sync): nothing is dropped, caches stay warm for every tool.
# Not rm -rf: ext4 refuses to reuse inodes freed in the last ~30 s (recently_deleted), and creating 6,700
# files right after deleting 6,700 others costs every tool several seconds of kernel time scanning past them.
mkdir "$work/trash"
prep() { echo "sh -c 'if [ -e $work/u-$1 ]; then mv $work/u-$1 \$(mktemp -d $work/trash/XXXXXX)/; fi; ${2:-} sync'"; }
hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/unpack.json" \
  --prepare "$(prep vessel)" -n vessel "$vb unpack $layer $work/u-vessel" \
  --prepare "$(prep umoci)" -n umoci "umoci unpack --image $work/layout:minbase $work/u-umoci" \
  --prepare "$(prep tar "mkdir $work/u-tar;")" -n "tar -xzf" "tar -xzf $layer --numeric-owner -C $work/u-tar" >&2
# Same tree from all three (names, types, modes, owners, link targets).
tree() { (cd "$1" && find . -printf '%p %y %m %U:%G %l\n' | LC_ALL=C sort); }
cmp <(tree "$work/u-vessel") <(tree "$work/u-tar") >&2 || { echo "images.sh: vessel and tar unpacked different trees" >&2; exit 1; }
cmp <(tree "$work/u-vessel") <(tree "$work/u-umoci/rootfs") >&2 || { echo "images.sh: vessel and umoci unpacked different trees" >&2; exit 1; }

# Pull into an empty store / OCI layout each time (three files: rm -rf is fine here).
hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/pull.json" \
  --prepare "sh -c 'rm -rf $work/p-vessel $work/p-skopeo; sync'" \
  -n vessel "$vb pull $ref $work/p-vessel" \
  -n skopeo "skopeo copy -q --src-tls-verify=false docker://$ref oci:$work/p-skopeo:minbase" >&2

python3 - "$work/unpack.json" "$work/pull.json" "$runs" "$(stat -c %s "$layer")" "$(du -sb --apparent-size "$fixture/rootfs" | cut -f1)" \
  "$(find "$fixture/rootfs" | wc -l)" > "$out" <<'PY'
import json, sys, platform, subprocess, datetime
unpack, pull, runs, gz, size, entries = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
def ver(cmd):
    try: return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except Exception: return "?"
def table(path, peers):
    data = {r["command"]: r for r in json.load(open(path))["results"]}
    v = data["vessel"]["median"]
    print("| tool | median (ms) | mean (ms) | σ (ms) | peer ÷ vessel |\n|---|---|---|---|---|")
    for name in ["vessel"] + peers:
        r = data[name]
        print(f"| {name} | {r['median']*1000:.0f} | {r['mean']*1000:.0f} | {r['stddev']*1000:.0f} | {r['median']/v:.2f} |")
nproc = subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()
print(f"## Images: unpack and pull of Debian bookworm minbase\n")
print(f"Written by `make bench` (`bench/images.sh`) on {datetime.date.today()} ({platform.node()}, {nproc} cores, kernel {platform.release()}), "
      f"{runs} runs per tool after one warm-up, all tools in the same invocation. The image is `debootstrap --variant=minbase bookworm` "
      f"({entries:,} entries, {size/1e6:.0f} MB) imported as one gzip layer of {gz/1e6:.1f} MB; the ratio column is peer median ÷ vessel median "
      "(above 1 means Vessel is faster). The page cache is warm for every tool (the layer blob, the binaries, the registry's storage); "
      "nothing is dropped between runs, dirty data is written back (`sync`) before each.\n")
print("### Unpack of the layer into an empty directory\n")
table(unpack, ["umoci", "tar -xzf"])
print("\n- **vessel**: `vessel-bench unpack` = `LayerExtractor.Extract` as `SnapshotStore.Unpack` runs it (overlay whiteouts, every header checked, "
      "every entry resolved beneath the target without following symlinks, blob digest and diff ID verified), without the final `syncfs` none of the peers does.")
print("- **umoci**: `umoci unpack --image LAYOUT:minbase` (the same blob in an OCI layout written by `OciLayout.Export`); it also writes its config.json and an mtree manifest of the tree.")
print("- **tar -xzf**: GNU tar as root, `--numeric-owner`, into an empty directory; no digest check, no confinement.")
print("- The target is renamed away before each run, not deleted: ext4 avoids reusing inodes freed in the last ~30 s, and creating this "
      "tree right after `rm -rf` of the previous one costs every tool seconds of extra kernel time (`recently_deleted` in `perf`). "
      "With `rm -rf` in `--prepare` this machine measured about 6 s for tar and 8 s for umoci, the regime of the issue's 7.5 s / 12.2 s.")
print("- Before the extraction work in `src/Vessel.Images/Layers` (read-ahead decompression thread, cached parent directory fds, "
      "create-first, one copy buffer), the same A/B measurement gave vessel 1.26 s mean against tar's 1.14 s; after it 0.67 s.")
print("- The machine is shared (2 cores, other builds running): expect a few tens of percent of noise between runs; the ratios come from one invocation.")
print("- The three trees are compared after the runs (names, types, modes, owners, link targets): identical.")
print(f"\n### Pull from a local registry into an empty store\n")
table(pull, ["skopeo"])
print("\n- **vessel**: `vessel-bench pull` = `RegistryClient.PullAsync` into an empty content store (manifest, config and layer verified, written via ingest + fsync + rename, tagged).")
print("- **skopeo**: `skopeo copy --src-tls-verify=false docker://… oci:DIR:minbase` into an empty OCI layout.")
print("- Registry: Debian's `docker-registry` on 127.0.0.1 (plain HTTP), storage in a temp dir, the image pushed there by `vessel-bench push`.")
print(f"\nVersions: {ver(['umoci','--version'])}; {ver(['skopeo','--version'])}; {ver(['tar','--version'])}; {ver(['docker-registry','--version'])}.")
PY
bench/assemble.sh
cat "$out"
