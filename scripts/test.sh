#!/usr/bin/env bash
# Runs the whole suite (unit, integration as root, end-to-end on bin/), then the leak check.
# Prints "N passed, N failed" as its last line and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export VESSEL_BIN="$PWD/bin"
log=$(mktemp)
dotnet test --solution Vessel.slnx -c Release 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
total_ok=$(awk '/^  succeeded:/ {s+=$2} END {print s+0}' "$log")
total_fail=$(awk '/^  failed:/ {s+=$2} END {print s+0}' "$log")
# CI shows only the end of the output: name the failed tests again just above the summary.
if grep -q '^failed ' "$log"; then
  echo "Failed tests:"
  grep -A6 '^failed ' "$log" | cut -c1-300
fi
rm -f "$log"
if scripts/leak-check.sh; then total_ok=$((total_ok+1)); else total_fail=$((total_fail+1)); fi
if [ "$status" -ne 0 ] && [ "$total_fail" -eq 0 ]; then total_fail=1; fi   # build or runner failure
echo "${total_ok} passed, ${total_fail} failed"
[ "$total_fail" -eq 0 ]
