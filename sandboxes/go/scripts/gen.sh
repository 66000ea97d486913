#!/usr/bin/env bash
# Regenerates the Go code for the sidecar protocol (gen/runtimev1/) from
# proto/polyhost/runtime/v1/runtime.proto at the repository root.
#
#   scripts/gen.sh           regenerate gen/runtimev1/ in place
#   scripts/gen.sh --check   regenerate into a temporary directory and exit 1 if the
#                            committed code differs
#
# protoc comes from Python's grpcio-tools (python -m grpc_tools.protoc); PYTHON names the
# interpreter that has it (default python3, e.g. PYTHON=.venv/bin/python from the repository
# root). The two Go plugins are installed at pinned versions into .bin/ (git-ignored).
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12      # keep equal to google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
PROTOC_VERSION="libprotoc 35.1"     # grpcio-tools 1.85.x; named in the generated headers

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROTO_ROOT="$(cd "$HERE/../../proto" && pwd)"
PROTO_FILE="polyhost/runtime/v1/runtime.proto"
PYTHON="${PYTHON:-python3}"
BIN="$HERE/.bin"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

check=0
case "${1:-}" in
    "") ;;
    --check) check=1 ;;
    *)
        echo "usage: scripts/gen.sh [--check]" >&2
        exit 2
        ;;
esac

# ---- plugins at their pinned versions ---------------------------------------------------------

plugin_version() { "$BIN/$1" --version 2>/dev/null | awk '{print $2}' || true; }

if [[ "$(plugin_version protoc-gen-go)" != "$PROTOC_GEN_GO_VERSION" ]]; then
    GOBIN="$BIN" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
fi
if [[ "$(plugin_version protoc-gen-go-grpc)" != "${PROTOC_GEN_GO_GRPC_VERSION#v}" ]]; then
    GOBIN="$BIN" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
fi

if ! "$PYTHON" -c 'import grpc_tools.protoc' 2>/dev/null; then
    echo "gen.sh: $PYTHON has no grpc_tools (pip install grpcio-tools, or set PYTHON)" >&2
    exit 1
fi

protoc_version="$("$PYTHON" -m grpc_tools.protoc --version)"
if [[ "$protoc_version" != "$PROTOC_VERSION" ]]; then
    echo "gen.sh: note: $PYTHON's grpc_tools has $protoc_version, the committed code was" \
        "generated with $PROTOC_VERSION: the version comments of the generated files will differ" >&2
fi

# ---- generate ---------------------------------------------------------------------------------

# generate OUT_ROOT: writes OUT_ROOT/gen/runtimev1/*.go (paths follow the module path).
generate() {
    "$PYTHON" -m grpc_tools.protoc \
        --plugin=protoc-gen-go="$BIN/protoc-gen-go" \
        --plugin=protoc-gen-go-grpc="$BIN/protoc-gen-go-grpc" \
        --go_out="$1" --go_opt=module=polyhost.dev/sidecar \
        --go-grpc_out="$1" --go-grpc_opt=module=polyhost.dev/sidecar \
        -I "$PROTO_ROOT" \
        "$PROTO_ROOT/$PROTO_FILE"
}

if [[ $check == 0 ]]; then
    rm -rf "$HERE/gen/runtimev1"
    mkdir -p "$HERE/gen/runtimev1"
    generate "$HERE"
    exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/gen/runtimev1"
generate "$tmp"
if ! diff -ru "$HERE/gen/runtimev1" "$tmp/gen/runtimev1" >"$tmp/diff"; then
    cat "$tmp/diff" >&2
    echo "gen.sh: gen/runtimev1 is out of date with $PROTO_FILE (or was generated with other" \
        "plugin/protoc versions); run sandboxes/go/scripts/gen.sh and commit the result" >&2
    exit 1
fi
