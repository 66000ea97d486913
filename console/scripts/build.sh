#!/usr/bin/env bash
# Builds the console into host/polyhost/server/console_dist/ (gzipped copies beside the files).
# `npm ci` runs only when node_modules does not match the lockfile, and the build only when a
# source is newer than the last build, so a second `make` costs nothing.
# Prints nothing on success; on failure prints the failing step's output.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dist=../host/polyhost/server/console_dist
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

run() {
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "console/scripts/build.sh: '$*' failed" >&2
    exit 1
  fi
}

bash scripts/install.sh
sources=(src public index.html package-lock.json vite.config.ts tsconfig.json)
if [ ! -f "$dist/index.html" ] || [ -n "$(find "${sources[@]}" -newer "$dist/index.html" -print -quit)" ]; then
  run npx --no-install tsc -b
  run npx --no-install vite build
  run node scripts/compress.mjs
fi
