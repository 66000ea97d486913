#!/usr/bin/env bash
# Builds every wasm node under wasm-nodes/ into wasm-nodes/build/, skipping what is up to date.
#
#   wasm-nodes/build.sh            build what changed
#   wasm-nodes/build.sh --clean    remove wasm-nodes/build/ first
#
# Toolchains: clang with wasm-ld, wasi-libc and the wasm32 compiler-rt builtins (Debian packages,
# installed with apt-get when missing), Go >= 1.24 (GOOS=wasip1), Node >= 20 with npm (the
# pinned AssemblyScript compiler, installed into sdk/assemblyscript/node_modules).
# CLANG_VERSION picks another packaged clang (default 14, Debian 12's).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="$HERE/build"
CLANG_VERSION="${CLANG_VERSION:-14}"
CLANG="clang-$CLANG_VERSION"
SELF="$HERE/build.sh"

if [[ "${1:-}" == "--clean" ]]; then
    rm -rf "$BUILD"
fi

say() { printf '  %-5s %s\n' "$1" "${2#"$HERE"/}"; }

# stale OUT INPUT...: true when OUT is missing or older than any input (this script included,
# so a change of flags rebuilds everything).
stale() {
    local out="$1" input
    shift
    [[ -e "$out" ]] || return 0
    for input in "$@" "$SELF"; do
        [[ "$input" -nt "$out" ]] && return 0
    done
    return 1
}

# ---- toolchains ---------------------------------------------------------------------------

wasi_ready() {
    command -v "$CLANG" >/dev/null &&
        command -v "wasm-ld-$CLANG_VERSION" >/dev/null &&
        [[ -e /usr/lib/wasm32-wasi/libc.a ]] &&
        [[ -e "$("$CLANG" --target=wasm32-wasi -print-libgcc-file-name)" ]]
}

ensure_clang() {
    wasi_ready && return 0
    local packages=("clang-$CLANG_VERSION" "lld-$CLANG_VERSION" wasi-libc
        "libclang-rt-$CLANG_VERSION-dev-wasm32")
    local sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        if ! command -v sudo >/dev/null; then
            echo "build.sh: need ${packages[*]}; install them (apt-get install) and retry" >&2
            exit 1
        fi
        sudo=(sudo)
    fi
    echo "build.sh: installing ${packages[*]}" >&2
    # A fresh machine may have no package lists yet; update only when the install needs it.
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${packages[@]}" >&2; then
        "${sudo[@]}" apt-get update -q >&2
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "${packages[@]}" >&2
    fi
    wasi_ready || { echo "build.sh: the wasm32-wasi C toolchain is still incomplete" >&2; exit 1; }
}

ensure_go() {
    if ! command -v go >/dev/null; then
        echo "build.sh: Go >= 1.24 is needed for the Go nodes (GOOS=wasip1, go:wasmexport)" >&2
        exit 1
    fi
    local minor
    minor="$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')"
    if ((minor < 24)); then
        echo "build.sh: Go >= 1.24 is needed, found $(go env GOVERSION)" >&2
        exit 1
    fi
}

ensure_asc() {
    local sdk="$HERE/sdk/assemblyscript"
    if ! command -v npm >/dev/null; then
        echo "build.sh: Node >= 20 with npm is needed for the AssemblyScript nodes" >&2
        exit 1
    fi
    # npm records the installed tree in node_modules/.package-lock.json.
    if stale "$sdk/node_modules/.package-lock.json" "$sdk/package-lock.json"; then
        say NPM "$sdk"
        (cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error >&2)
        touch "$sdk/node_modules/.package-lock.json"
    fi
}

# ---- C --------------------------------------------------------------------------------------

SDK_C=("$HERE/sdk/c/polyhost.c" "$HERE/sdk/c/polyhost.h")
# --stack-first puts the stack below the data, so an overflow traps instead of corrupting it.
# 1 MiB of stack (wasm-ld's default is 64 KiB), as Rust's wasm targets have. Debug info is
# stripped (Debian's libc.a carries it); function names stay, for readable traps.
CFLAGS=(--target=wasm32-wasi -O2 -Wall -Wextra -Werror -std=gnu11 -I"$HERE/sdk/c")
LDFLAGS=(-Wl,--stack-first -Wl,-z,stack-size=1048576 -Wl,--strip-debug)

# c_node MODE OUT SOURCE [with-sdk]: MODE is reactor or command.
c_node() {
    local mode="$1" out="$2" source="$3" sdk="${4:-sdk}"
    local inputs=("$source") flags=("${CFLAGS[@]}")
    if [[ "$sdk" == sdk ]]; then
        inputs+=("${SDK_C[@]}")
    fi
    stale "$out" "${inputs[@]}" || return 0
    if [[ "$mode" == reactor ]]; then
        flags+=(-mexec-model=reactor -DPOLYHOST_REACTOR)
    else
        flags+=(-DPOLYHOST_COMMAND)
    fi
    mkdir -p "$(dirname "$out")"
    say CC "$out"
    local sources=("$source")
    [[ "$sdk" == sdk ]] && sources+=("$HERE/sdk/c/polyhost.c")
    "$CLANG" "${flags[@]}" "${LDFLAGS[@]}" "${sources[@]}" -o "$out.tmp"
    mv "$out.tmp" "$out"
}

build_c() {
    # Every module is its own clang run: run them side by side, one per core.
    local cores failed=0 guest
    cores="$(nproc 2>/dev/null || echo 2)"
    c_job() {
        while (($(jobs -rp | wc -l) >= cores)); do
            wait -n || failed=1
        done
        c_node "$@" &
    }
    c_job reactor "$BUILD/word_count.wasm" "$HERE/c/word_count/word_count.c"
    c_job command "$BUILD/upper.wasm" "$HERE/c/upper_cmd/upper_cmd.c"
    for guest in read_file write_file getenv loop grow recurse trap big_output exit_code stream; do
        c_job command "$BUILD/hostile/$guest.wasm" "$HERE/hostile/$guest.c"
        c_job reactor "$BUILD/hostile/reactor/$guest.wasm" "$HERE/hostile/$guest.c"
    done
    # Guests that break the ABI on purpose bring their own entry points.
    c_job command "$BUILD/hostile/bad_json.wasm" "$HERE/hostile/bad_json.c" no-sdk
    c_job reactor "$BUILD/hostile/reactor/bad_json.wasm" "$HERE/hostile/bad_json.c" no-sdk
    c_job reactor "$BUILD/hostile/reactor/bad_pointer.wasm" "$HERE/hostile/bad_pointer.c" no-sdk
    while (($(jobs -rp | wc -l) > 0)); do
        wait -n || failed=1
    done
    return "$failed"
}

# ---- Go -------------------------------------------------------------------------------------

build_go() {
    local dir="$HERE/go/sum" inputs
    mapfile -t inputs < <(find "$HERE/sdk/go" "$dir" -name '*.go' -o -name go.mod)
    # GOTOOLCHAIN=local: never fetch another Go (the SDK is a local `replace`, nothing is fetched).
    export GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local GOFLAGS=-trimpath
    if stale "$BUILD/sum.wasm" "${inputs[@]}"; then
        say GO "$BUILD/sum.wasm"
        (cd "$dir" && go build -o "$BUILD/sum.wasm" .)
    fi
    if stale "$BUILD/sum_reactor.wasm" "${inputs[@]}"; then
        say GO "$BUILD/sum_reactor.wasm"
        (cd "$dir" && go build -tags reactor -buildmode=c-shared -o "$BUILD/sum_reactor.wasm" .)
    fi
}

# ---- AssemblyScript -------------------------------------------------------------------------

build_as() {
    local sdk="$HERE/sdk/assemblyscript" out="$BUILD/greet.wasm"
    local entry="$HERE/assemblyscript/greet/assembly/index.ts"
    stale "$out" "$entry" "$sdk/assembly/polyhost.ts" "$sdk/package-lock.json" || return 0
    say ASC "$out"
    # asc names the abort handler by its path relative to the working folder.
    (cd "$HERE" && "$sdk/node_modules/.bin/asc" "${entry#"$HERE"/}" -o "$out" \
        --runtime stub -O3 --use abort=sdk/assemblyscript/assembly/polyhost/abortNode)
}

# ---- all ------------------------------------------------------------------------------------

ensure_clang
ensure_go
ensure_asc
mkdir -p "$BUILD/hostile/reactor"

# Go's first build compiles its runtime for wasip1, the longest step: overlap it with the rest.
build_go &
go_job=$!
build_c
build_as
wait "$go_job"
