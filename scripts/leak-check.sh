#!/usr/bin/env bash
# Fails if the tests left anything behind: mounts, cgroups, processes or state directories of Vessel.
set -uo pipefail
bad=0
report() { echo "leak-check: $*" >&2; bad=1; }
m=$(grep -cE 'vessel' /proc/self/mountinfo || true)
[ "$m" -eq 0 ] || report "$m mounts mentioning vessel: $(grep -E 'vessel' /proc/self/mountinfo | awk '{print $5}' | head -5 | tr '\n' ' ')"
c=$(find /sys/fs/cgroup -maxdepth 4 -type d -iname '*vessel*' 2>/dev/null)
[ -z "$c" ] || report "cgroups left: $(echo "$c" | head -5 | tr '\n' ' ')"
p=$(pgrep -af 'vessel-executor|vessel-runc|vesseld .*vessel-test' | grep -v -e pgrep -e leak-check || true)
[ -z "$p" ] || report "processes left: $(echo "$p" | head -5 | tr '\n' ' ')"
s=$(find /run /tmp -maxdepth 1 -name 'vessel-test*' 2>/dev/null)
[ -z "$s" ] || report "state dirs left: $(echo "$s" | head -5 | tr '\n' ' ')"
l=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep -E '^(vessel|vsl|vt-|vb-)' || true)
[ -z "$l" ] || report "network links left: $(echo "$l" | head -5 | tr '\n' ' ')"
n=$(ip netns list 2>/dev/null | grep -i vessel || true)
[ -z "$n" ] || report "network namespaces left: $(echo "$n" | head -5 | tr '\n' ' ')"
if command -v nft >/dev/null; then
  t=$(nft list tables 2>/dev/null | grep -i vessel || true)
  [ -z "$t" ] || report "nftables tables left: $(echo "$t" | tr '\n' ' ')"
fi
q=$(pgrep -af 'qemu-system.*vessel' | grep -v -e pgrep -e leak-check || true)
[ -z "$q" ] || report "qemu processes left: $(echo "$q" | head -3 | tr '\n' ' ')"
[ "$bad" -eq 0 ] && echo "leak-check: nothing left behind"
exit $bad
