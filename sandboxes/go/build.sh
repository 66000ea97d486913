#!/usr/bin/env bash
# Builds the example sidecars into sandboxes/go/bin/: geo-sidecar and testkit-sidecar.
# Quiet on success. Needs Go (go.mod's version or newer) and the Go module proxy, or the
# modules already in the module cache; go.sum pins every module.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

export GOTOOLCHAIN=local CGO_ENABLED=0
build=(go build -mod=readonly -trimpath -buildvcs=false -ldflags="-s -w")
"${build[@]}" -o bin/geo-sidecar ./examples/geo
"${build[@]}" -o bin/testkit-sidecar ./examples/testkit
