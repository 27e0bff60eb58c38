#!/usr/bin/env bash
# VM benchmarks: the time from `vessel vm start` to the guest's first console byte and to the initramfs's marker
# line, against the very same qemu-system-x86_64 command run by hand (both read the serial log file QEMU writes);
# and the time of `vessel vm clone` (a linked clone) for a 1 GiB and a 20 GiB base disk against a full copy (cp).
# Writes docs/benchmarks/vms.md and reassembles docs/benchmarks.md. Needs root, qemu-system-x86, qemu-utils,
# busybox-static and Debian's kernel in .cache/kernel (scripts/setup.sh). BENCH_VM_RUNS (default 3) boots each.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_VM_RUNS:-3}
bin=$PWD/bin
kernel=$(ls "$PWD"/.cache/kernel/boot/vmlinuz-* | head -1)
work=$(mktemp -d /tmp/vessel-bench-vms.XXXXXX)
sock=$work/v.sock
daemon_pid=
cleanup() {
  if [ -n "$daemon_pid" ]; then
    VESSEL_HOST=unix://$sock "$bin/vessel" vm ls -a -q 2>/dev/null | while read -r id; do VESSEL_HOST=unix://$sock "$bin/vessel" vm rm -f "$id" >/dev/null 2>&1 || true; done
    kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true
  fi
  pkill -F "$work/hand/qemu.pid" 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
out=docs/benchmarks/vms.md
"$bin/vesseld" --socket "$sock" --root "$work/root" --run-root "$work/run" 2>"$work/vesseld.log" &
daemon_pid=$!
export VESSEL_HOST=unix://$sock
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
v() { "$bin/vessel" "$@"; }
now() { date +%s%N; }
# Waits until FILE holds PATTERN (grep -q) or, with "", any byte; prints the nanoseconds since START.
wait_for() { local file=$1 pattern=$2 start=$3
  while true; do
    if [ -z "$pattern" ]; then [ -s "$file" ] && break; else grep -qa "$pattern" "$file" 2>/dev/null && break; fi
    sleep 0.005
  done
  echo $(( $(now) - start ))
}
ms() { awk -v n="$1" 'BEGIN { printf "%.0f", n / 1e6 }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { printf "%.0f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
accel=$(v system info --format json | jq -r '.accel.accel')
reason=$(v system info --format json | jq -r '.accel.reason')
v vm create bench --kernel "$kernel" --initramfs --memory 256m --append "console=ttyS0 vessel.poweroff" >/dev/null
dir=$(v vm inspect --format json bench | jq -r '.dir')
log=$(v vm inspect --format json bench | jq -r '.logPath')

vessel_first=() vessel_marker=() hand_first=() hand_marker=()
for i in $(seq "$runs"); do
  : > "$log"
  start=$(now); v vm start bench >/dev/null
  vessel_first+=("$(wait_for "$log" "" "$start")")
  vessel_marker+=("$(wait_for "$log" VESSEL-GUEST-READY "$start")")
  for _ in $(seq 600); do [ "$(v vm inspect --format json bench | jq -r .state.status)" = stopped ] && break; sleep 0.1; done

  # The same command by hand: qemu.cmdline with its sockets, pid file and log moved into $work/hand.
  rm -rf "$work/hand"; mkdir -p "$work/hand"
  mapfile -t cmd < "$dir/qemu.cmdline"
  run=$(dirname "$(grep -o 'path=[^,]*qmp.sock' "$dir/qemu.cmdline" | head -1 | cut -d= -f2)")
  for j in "${!cmd[@]}"; do cmd[$j]=${cmd[$j]//$run/$work/hand}; cmd[$j]=${cmd[$j]//$log/$work/hand/console.log}; done
  start=$(now); "${cmd[@]}" >/dev/null 2>&1 &
  qpid=$!
  hand_first+=("$(wait_for "$work/hand/console.log" "" "$start")")
  hand_marker+=("$(wait_for "$work/hand/console.log" VESSEL-GUEST-READY "$start")")
  wait "$qpid" || true
done
vf=$(printf '%s\n' "${vessel_first[@]}" | median); vm_=$(printf '%s\n' "${vessel_marker[@]}" | median)
hf=$(printf '%s\n' "${hand_first[@]}" | median); hm=$(printf '%s\n' "${hand_marker[@]}" | median)

# Linked clones of a 1 GiB base (fully written) and a 20 GiB base (1 GiB written), against cp of the same base.
clone_rows=""
for size in 1 20; do
  img=$work/base-$size.qcow2
  qemu-img create -q -f qcow2 "$img" "${size}G"
  qemu-io -f qcow2 -c "write -P 0x5a 0 1G" "$img" >/dev/null
  v vm create "src$size" "$img" >/dev/null
  clone_ns=()
  for i in $(seq "$runs"); do
    start=$(now); v vm clone "src$size" "clone$size-$i" >/dev/null; clone_ns+=("$(( $(now) - start ))")
  done
  start=$(now); cp "$img" "$work/copy.qcow2"; sync "$work/copy.qcow2"; cp_ns=$(( $(now) - start )); rm -f "$work/copy.qcow2"
  c=$(printf '%s\n' "${clone_ns[@]}" | median)
  clone_rows+="| ${size} GiB (1 GiB of data) | $(ms "$c") ms | $(ms "$cp_ns") ms | $(awk -v a="$cp_ns" -v b="$c" 'BEGIN { printf "%.0f×", a / b }') |"$'\n'
done

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -p docs/benchmarks
{
  echo "# Virtual machines"
  echo
  echo "\`bench/vms.sh\` on $(date -u +%Y-%m-%d), $(nproc) CPUs, QEMU $(qemu-system-x86_64 --version | head -1 | awk '{print $4}'), accelerator **$accel** ($reason)."
  echo "Debian's kernel $(basename "$kernel") with the initramfs Vessel generates, 256 MiB, 1 vCPU; median of $runs boots each."
  echo "Load average (1, 5, 15 min) before the run: $load_start; after: $load_end. Under TCG a boot is CPU-bound: other work on the machine shows up in both columns."
  echo
  echo "| from start to … | vessel vm start | the same qemu command by hand | Vessel's overhead |"
  echo "|---|---|---|---|"
  echo "| the first console byte | $(ms "$vf") ms | $(ms "$hf") ms | $(ms $((vf - hf))) ms |"
  echo "| the guest's marker line (/init runs) | $(ms "$vm_") ms | $(ms "$hm") ms | $(ms $((vm_ - hm))) ms |"
  echo
  echo "\`vessel vm start\` includes the CLI, the API call, the memory check, spawning QEMU and the QMP handshake (it returns once QMP answers)."
  if [ "$vf" -lt "$hf" ]; then
    echo "Vessel came out faster than its own QEMU command run by hand. It is the same command, so this is no gain of Vessel's: the difference is noise from the load, or a difference between the daemon's environment and the script's that this run does not isolate."
  fi
  echo
  echo "| linked clone (\`vessel vm clone\`) of a base disk of | clone | full copy (cp + sync) | ratio |"
  echo "|---|---|---|---|"
  printf '%s' "$clone_rows"
  echo
  echo "A clone renames the source's disk into the pool and creates two qcow2 overlays on it, so its time does not grow with the disk."
} > "$out"
bench/assemble.sh
cat "$out"
