#!/usr/bin/env bash
# Builds the TypeScript sidecar SDK and its examples into dist/.
# Installs the locked dependencies first when node_modules is missing or older than
# package-lock.json. Prints nothing on success; on failure prints the failing step's output.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

run() {
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "sandboxes/node/build.sh: '$*' failed" >&2
    exit 1
  fi
}

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  run npm ci --no-audit --no-fund
fi
run npm run build
