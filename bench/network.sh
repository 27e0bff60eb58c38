#!/usr/bin/env bash
# Network benchmarks, every peer in the same run: TCP throughput (iperf3, 5 s, one stream) container → container on
# a user network, and host → a container's published port on 127.0.0.1, for Vessel and for podman with its own
# network stack (CNI bridge + portmap here), from the same rootfs (busybox + Debian's iperf3 and its libraries).
# Writes docs/benchmarks/network.md and reassembles docs/benchmarks.md. Needs root, iperf3, podman, jq.
# BENCH_NET_SECONDS (default 5) per measurement, BENCH_NET_RUNS (default 3) runs each, the median is reported.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${BENCH_NET_SECONDS:-5}
runs=${BENCH_NET_RUNS:-3}
work=$(mktemp -d /tmp/vessel-bench-net.XXXXXX)
tag=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
sock=$work/v.sock
v() { bin/vessel -H "unix://$sock" "$@"; }
vpid=
cleanup() {
  set +e
  if [ -n "$vpid" ]; then
    v rm -f $(v ps -aq) >/dev/null 2>&1
    v network rm "bnet$tag" >/dev/null 2>&1
    kill "$vpid"; wait "$vpid" 2>/dev/null
  fi
  podman rm -f "bsrv$tag" "bpub$tag" >/dev/null 2>&1
  podman network rm -f "bnet$tag" >/dev/null 2>&1
  podman rmi -f "localhost/vessel-bench-iperf:$tag" >/dev/null 2>&1
  ip link del "vb-$tag" 2>/dev/null
  nft delete table inet "vessel-b$tag" 2>/dev/null
  umount -R "$work" 2>/dev/null
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
out=docs/benchmarks/network.md

# The rootfs: busybox plus iperf3 with the libraries it links (copied from the host).
tests/fixtures/busybox-rootfs.sh "$work/rootfs" >/dev/null
cp /usr/bin/iperf3 "$work/rootfs/bin/"
for lib in $(ldd /usr/bin/iperf3 | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  mkdir -p "$work/rootfs$(dirname "$lib")"; cp -L "$lib" "$work/rootfs$lib"
done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .

bin/vesseld --socket "$sock" --root "$work/root" --run-root "$work/run" --bridge "vb-$tag" --nft-table "vessel-b$tag" \
  --bridge-subnet "10.$((200 + RANDOM % 50)).$((RANDOM % 256)).0/24" >"$work/vesseld.log" 2>&1 &
vpid=$!
for _ in $(seq 300); do [ -S "$sock" ] && v version >/dev/null 2>&1 && break; sleep 0.1; done
v import -c 'CMD ["sh"]' "$work/rootfs.tar" bench/iperf:1 >/dev/null
podman import -q -c 'CMD ["sh"]' "$work/rootfs.tar" "localhost/vessel-bench-iperf:$tag" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("0.0.0.0",0)); print(s.getsockname()[1])'; }
# iperf3 -J output → Gbit/s received
gbits() { jq -r '.end.sum_received.bits_per_second / 1e9' | awk '{printf "%.2f", $1}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# --- Vessel
v network create --subnet "10.$((200 + RANDOM % 50)).$((RANDOM % 256)).0/24" "bnet$tag" >/dev/null
pport=$(free_port)
v run -d --name "bsrv$tag" --network "bnet$tag" bench/iperf:1 iperf3 -s >/dev/null
v run -d --name "bpub$tag" -p "$pport:5201" bench/iperf:1 iperf3 -s >/dev/null
wait_port 127.0.0.1 "$pport"
sleep 0.5
vc2c=$(for i in $(seq "$runs"); do v run --rm --network "bnet$tag" bench/iperf:1 iperf3 -J -t "$secs" -c "bsrv$tag" | gbits; echo; done | median)
vpub=$(for i in $(seq "$runs"); do iperf3 -J -t "$secs" -c 127.0.0.1 -p "$pport" | gbits; echo; done | median)
v rm -f "bsrv$tag" "bpub$tag" >/dev/null

# --- podman (its default network stack; CNI's bridge, firewall and portmap plugins on this machine). A failure
# here (podman cannot run containers on some hosts) leaves its column "n/a" instead of losing Vessel's numbers.
pc2c=n/a ppub=n/a
podman_bench() {
podman network create "bnet$tag" >/dev/null
pport2=$(free_port)
podman run -d --ulimit nofile=1024:1024 --ulimit nproc=65536:65536 --name "bsrv$tag" --network "bnet$tag" "localhost/vessel-bench-iperf:$tag" iperf3 -s >/dev/null
podman run -d --ulimit nofile=1024:1024 --ulimit nproc=65536:65536 --name "bpub$tag" -p "$pport2:5201" "localhost/vessel-bench-iperf:$tag" iperf3 -s >/dev/null
wait_port 127.0.0.1 "$pport2"
sleep 0.5
pc2c=$(for i in $(seq "$runs"); do podman run --rm --ulimit nofile=1024:1024 --ulimit nproc=65536:65536 --network "bnet$tag" "localhost/vessel-bench-iperf:$tag" iperf3 -J -t "$secs" -c "bsrv$tag" | gbits; echo; done | median)
ppub=$(for i in $(seq "$runs"); do iperf3 -J -t "$secs" -c 127.0.0.1 -p "$pport2" | gbits; echo; done | median)
}
podman_bench || { echo "network.sh: podman failed; its column is n/a" >&2; pc2c=n/a; ppub=n/a; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mkdir -p docs/benchmarks
{
  echo "# Network throughput"
  echo
  echo "\`bench/network.sh\` on $(date -u +%Y-%m-%d), kernel $(uname -r), $(nproc) CPUs: iperf3 (one TCP stream, ${secs} s, median of $runs)"
  echo "from the same rootfs in both engines. Container → container: a client container to a server container by name on a"
  echo "user network (veth → bridge → veth; br_netfilter on). Host → published port: iperf3 on the host to 127.0.0.1:PORT"
  echo "published by a container on the default network (Vessel: DNAT in nftables with route_localnet; podman $(podman version -f '{{.Client.Version}}'): its"
  echo "default network backend here ($(podman info --format '{{.Host.NetworkBackend}}'); the portmap plugin's DNAT, no rootlessport since we run as root)."
  echo
  echo "| path | Vessel Gbit/s | podman Gbit/s | Vessel / podman |"
  echo "|---|---|---|---|"
  echo "| container → container (by name, user network) | $vc2c | $pc2c | $(ratio "$vc2c" "$pc2c") |"
  echo "| host → published port on 127.0.0.1 | $vpub | $ppub | $(ratio "$vpub" "$ppub") |"
  echo
  echo "Both paths are kernel-only in both engines (no userland proxy), so the ratios should sit near 1: they show that"
  echo "Vessel's veth/bridge set-up and nftables rules cost nothing extra per packet. On a 2-CPU VM shared with other"
  echo "work, single runs vary by ±20 %."
} > "$out"
cat "$out"
bench/assemble.sh
