#!/usr/bin/env bash
# docs/benchmarks.md = a title + every section that a bench script wrote into docs/benchmarks/ (runtime first).
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# Benchmarks"
  echo
  echo "Sections are written by \`make bench\`: \`bench/run.sh\` → [benchmarks/runtime.md](benchmarks/runtime.md), \`bench/images.sh\` → [benchmarks/images.md](benchmarks/images.md), \`bench/integrations.sh\` → [benchmarks/integrations.md](benchmarks/integrations.md), \`bench/engine.sh\` → [benchmarks/engine.md](benchmarks/engine.md), \`bench/build.sh\` → [benchmarks/build.md](benchmarks/build.md), \`bench/network.sh\` → [benchmarks/network.md](benchmarks/network.md), \`bench/vms.sh\` → [benchmarks/vms.md](benchmarks/vms.md); this file concatenates them (\`bench/assemble.sh\`)."
  for f in docs/benchmarks/runtime.md docs/benchmarks/images.md docs/benchmarks/integrations.md docs/benchmarks/engine.md docs/benchmarks/build.md docs/benchmarks/network.md docs/benchmarks/vms.md; do
    if [ -f "$f" ]; then echo; sed "1s/^# /## /" "$f"; fi   # a missing last section is no failure
  done
} > docs/benchmarks.md
