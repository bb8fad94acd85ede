#!/usr/bin/env bash
# The README's test command (`npm test`): start the services the tests need, type-check, then run
# every tier. Ends with one plain "N passed, N failed, N skipped" line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash test/services/up.sh || { echo "could not start test services" >&2; exit 1; }
npx tsc --noEmit -p tsconfig.json || { echo "type check failed" >&2; exit 1; }
mkdir -p .data
npx vitest run --project unit --project int --project e2e --reporter=default --reporter=json --outputFile=.data/vitest.json "$@"
rc=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(".data/vitest.json", "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + (r.numTodoTests ?? 0)} skipped`);
' || true
exit $rc
