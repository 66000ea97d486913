#!/usr/bin/env bash
# `npm ci` (from the npm registry, as the lockfile pins) when node_modules is missing or older
# than package-lock.json; otherwise nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v npm >/dev/null || { echo "the console needs Node.js 20.19+ and npm" >&2; exit 1; }
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log="$(mktemp)"
  trap 'rm -f "$log"' EXIT
  if ! npm ci --no-audit --no-fund >"$log" 2>&1; then
    cat "$log" >&2
    echo "console/scripts/install.sh: npm ci failed" >&2
    exit 1
  fi
fi
