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
[ "$bad" -eq 0 ] && echo "leak-check: nothing left behind"
exit $bad
