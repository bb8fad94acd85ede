#!/usr/bin/env bash
# Paired A/B of the actor runtime's commands/s: runs bench/actors.ts in a base checkout and in this
# one, alternating, ROUNDS times, and prints commands/s and worker CPU µs per command of each run.
# Single runs swing ±15 % on a shared VM; compare the medians.
#
#   git worktree add --detach /work/wt-base <rev> && ln -s "$PWD/node_modules" /work/wt-base/node_modules
#   bash bench/actors-ab.sh /work/wt-base 8 [extra bench/actors.ts flags]
set -euo pipefail
BASE=${1:?base checkout}; ROUNDS=${2:-4}; shift $(($# < 2 ? $# : 2))  # the rest goes to bench/actors.ts
HERE=$(cd "$(dirname "$0")/.." && pwd)
for _ in $(seq 1 "$ROUNDS"); do
  for dir in "$BASE" "$HERE"; do
    line=$(cd "$dir" && npx tsx bench/actors.ts --commands 16000 --concurrency 256 --loads 0 "$@" 2>&1 | tail -1)
    node -e 'const c = JSON.parse(process.argv[2]).commands; console.log(process.argv[1], Math.round(c.perSec), "commands/s", Math.round(c.workerCpuUsPerCommand), "µs/command")' "$dir" "$line"
  done
done
