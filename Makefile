# The project's commands. Two are all a newcomer needs:
#   make run    the local stack on its embedded defaults (anvil + contracts + backend + web page)
#   make test   every test: contracts (forge), backend and end to end (cargo), the page (Chromium)
# Both install what they need first, from npm, crates.io and Debian packages only.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

BIN := anvil/node_modules/.bin
FORGE := $(CURDIR)/$(BIN)/forge
BACKEND := target/debug/conference-backend
ABI := backend/abi/DynamicPriceEscrow.json
ARTIFACT := contracts/out/DynamicPriceEscrow.sol/DynamicPriceEscrow.json

.PHONY: help run demo test test-contracts test-rust test-browser tools contracts check-abi abi build browser

help:
	@echo "make run    start anvil, deploy the escrow, run the backend and web page on http://127.0.0.1:8080"
	@echo "make test   run every test (forge, cargo, end to end, browser)"
	@echo "make demo   one scripted agreement end to end, headless, with every figure checked"

# --- set-up -----------------------------------------------------------------------------------------

# The pinned Ethereum tools (anvil, forge, cast, solc-js, OpenZeppelin, playwright-core), from the lock file.
tools: anvil/node_modules/.package-lock.json
anvil/node_modules/.package-lock.json: anvil/package.json anvil/package-lock.json
	cd anvil && npm ci --no-audit --no-fund --loglevel=error

contracts: tools
	cd contracts && $(FORGE) build

# Regenerates the backend's committed bindings from a fresh contract build.
abi: contracts
	node contracts/export-abi.js $(ARTIFACT) > $(ABI)

# Fails if the committed bindings differ from what the contracts compile to.
check-abi: contracts
	@node contracts/export-abi.js $(ARTIFACT) | diff -q - $(ABI) > /dev/null || \
	  { echo "$(ABI) is stale: run 'make abi' and commit it"; exit 1; }

build: tools
	cargo build --workspace --bins

# Debian's Chromium for the browser tests (never a downloaded browser).
browser:
	@command -v chromium > /dev/null || { apt-get update -qq && apt-get install -y -qq chromium > /dev/null; }

# --- the two commands ---------------------------------------------------------------------------------

run: build
	$(BACKEND) dev

test: test-contracts check-abi test-rust test-browser

test-contracts: tools
	cd contracts && $(FORGE) test

test-rust: build
	cargo test --workspace

test-browser: build browser
	node --test tests/browser/

demo: build
	cargo run -q -p conference-e2e --bin demo
