# The project's commands. Two are all a newcomer needs:
#   make run    the local stack on its embedded defaults (anvil + contracts + backend + web page)
#   make test   every test: contracts (forge), backend and end to end (cargo), the API fuzzed
#               (schemathesis), the page (Chromium)
# Both install what they need first, from npm, crates.io, PyPI and Debian packages only.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

BIN := anvil/node_modules/.bin
# The platform binary itself: the npm launcher in node_modules/.bin exits 0 even when forge fails.
FORGE := $(CURDIR)/anvil/node_modules/@foundry-rs/forge-linux-amd64/bin/forge
BACKEND := target/debug/conference-backend
# The contracts the backend binds to: their ABI and bytecode are committed under backend/abi
# (MockStablecoin, from contracts/test/mocks/Tokens.sol, is the dev chain's stablecoin).
BOUND := ConferenceEscrow EscrowAnnex OfferBook ProviderRegistry MockStablecoin
# A bound contract's forge artifact, whichever source file declares it.
artifact = $$(ls contracts/out/*/$(1).json)

.PHONY: openapi help run demo test test-contracts lint-rust test-rust test-api test-browser test-deploy kube postgres janus tools web contracts check-abi abi build browser analyze bench bench-gas bench-backend bench-kube bench-web bench-sfu bench-report soak deploy-contracts gas-snapshot

help:
	@echo "make run    start anvil, deploy the escrow, run the backend and web page on http://127.0.0.1:8080"
	@echo "make test   run every test (forge, cargo, end to end, browser)"
	@echo "make demo   one scripted agreement end to end, headless, with every figure checked"
	@echo "make bench             every benchmark below (the timed ones BENCH_RUNS times, default 3) into BENCHMARKS.md and BENCHMARKS.json"
	@echo "make bench-gas         gas per operation of each model with its floor, beside Sablier, OZ PaymentSplitter and Escrow, a per-agreement baseline; cost in USD"
	@echo "make bench-backend     watcher catch-up, the loop's latency, memory and CPU up to 10,000 live agreements, throughput"
	@echo "make bench-web         the web app's bundle size (gzip, per page), time to interactive, \"Pay\" to the join link, and Lighthouse's scores, in headless Chromium"
	@echo "make bench-sfu         the Janus SFU: join time, Janus CPU per forwarded stream and participants per core, recovery after a kill"
	@echo "make soak              1,000 agreements through the loop with random kills of the backend; reports losses"
	@echo "make bench-kube        signed agreement to Jitsi pod answering (cold, warm pool) on a test API server; placement speed"
	@echo "make deploy-contracts  deploy to a throwaway anvil, record contracts/deployments/31337.json, verify"
	@echo "make analyze           slither over contracts/src"
	@echo "make test-api          fuzz the HTTP API against its OpenAPI document (schemathesis)"
	@echo "make test-deploy       render deploy/ (kubectl kustomize) and validate every manifest offline against Kubernetes $(KUBE_VALIDATE_VERSION)"
	@echo "make kube              build (once) and cache kube-apiserver 1.20.2, etcd and kubectl for the Kubernetes tests"

# --- set-up -----------------------------------------------------------------------------------------

# The pinned Ethereum tools (anvil, forge, cast, solc-js, OpenZeppelin, playwright-core), from the lock file.
tools: anvil/node_modules/.package-lock.json
anvil/node_modules/.package-lock.json: anvil/package.json anvil/package-lock.json
	cd anvil && npm ci --no-audit --no-fund --loglevel=error

# The web app's dependencies (from web/'s lock file), and its production build in web/dist, which the
# backend embeds (backend/build.rs refuses to compile without it). Vite skips nothing: it rebuilds each time.
web: web/node_modules/.package-lock.json
	cd web && npm run build
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error

contracts: tools
	cd contracts && $(FORGE) build

# Regenerates the backend's committed bindings from a fresh contract build.
abi: contracts
	for c in $(BOUND); do node contracts/export-abi.js $(call artifact,$$c) > backend/abi/$$c.json; done

# The web app's committed copy of the backend's OpenAPI document, from which its API types are generated
# (the backend's tests fail when the copy is stale). The backend embeds web/dist, so this needs a build of it.
openapi: web
	cargo run -q -p conference-backend -- openapi > web/openapi.json

# Fails if the committed bindings differ from what the contracts compile to.
check-abi: contracts
	@for c in $(BOUND); do \
	  node contracts/export-abi.js $(call artifact,$$c) | diff -q - backend/abi/$$c.json > /dev/null || \
	    { echo "backend/abi/$$c.json is stale: run 'make abi' and commit it"; exit 1; }; \
	done

build: tools web
	cargo build --workspace --bins

# Static analysis of contracts/src with slither (pinned in contracts/analyze-requirements.txt, installed
# once into a virtualenv outside the clone); fails on any finding not triaged in the sources.
analyze: tools
	bash contracts/analyze.sh

# Deploys the contracts to a throwaway local anvil (free loopback port, anvil's dev account 0), writes
# contracts/deployments/31337.json with its standard-JSON inputs, and checks the deployed code against them.
# For a testnet: RPC_URL=... DEPLOYER_PRIVATE_KEY=... contracts/script/deploy.sh (see contracts/script/README.md).
deploy-contracts: tools
	bash contracts/script/deploy-local.sh

# Debian's Chromium for the browser tests (never a downloaded browser).
browser:
	@command -v chromium > /dev/null || { apt-get update -qq && apt-get install -y -qq chromium > /dev/null; }

# Debian's Janus WebRTC Server (1.1.2): the local orchestrator runs one per conference, with a configuration
# of its own (backend/src/orchestrator/janus.rs). Installed once, timed. The package's own service (its demo
# configuration on every interface) is not used: where systemd runs it, it is stopped and disabled.
janus:
	@command -v janus > /dev/null || { \
	  echo "installing Debian's janus (the local orchestrator's SFU)..."; started=$$(date +%s); \
	  apt-get update -qq && apt-get install -y -qq janus > /dev/null; \
	  echo "janus $$(dpkg-query -W -f='$${Version}' janus) installed in $$(( $$(date +%s) - started )) s"; \
	  if command -v systemctl > /dev/null && systemctl is-active --quiet janus 2> /dev/null; then \
	    systemctl disable --now janus > /dev/null 2>&1 && echo "stopped and disabled the package's own janus service"; \
	  fi; }

# Debian's PostgreSQL server programs: the store's tests run each case on a private server too.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb > /dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq postgresql > /dev/null; }

# A real kube-apiserver for the Kubernetes tests (tests/src/kube.rs), built once from Debian's source
# package and cached outside the clone (a few minutes the first time), plus etcd and kubectl 1.20.
# The Rust tests find the binary through KUBE_APISERVER_BIN.
KUBE_CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/conference-tools/kubernetes-v1.20.2
export KUBE_APISERVER_BIN ?= $(KUBE_CACHE)/kube-apiserver
# One call provides all three (it prints kubectl's path, which the rules that need it ask for themselves).
kube:
	@bash anvil/kube-apiserver.sh kubectl > /dev/null

# --- the two commands ---------------------------------------------------------------------------------

run: build janus
	$(BACKEND) dev

test: test-contracts check-abi analyze lint-rust test-rust test-deploy test-api test-browser

# The sources' formatting, every forge test, then the committed gas snapshot (unit tests) checked
# against this build.
test-contracts: tools
	cd contracts && $(FORGE) fmt --check src test script
	cd contracts && $(FORGE) test
	cd contracts && $(FORGE) snapshot --check --no-match-test "invariant|testFuzz" > /dev/null || \
	  { echo "contracts/.gas-snapshot is stale: run 'make gas-snapshot' and commit it"; exit 1; }

gas-snapshot: tools
	cd contracts && $(FORGE) snapshot --no-match-test "invariant|testFuzz"

test-rust: build postgres kube janus
	cargo test --workspace

# The HTTP API fuzzed against its own OpenAPI document (schemathesis, pinned in backend/fuzz/requirements.txt
# and installed once into a virtualenv outside the clone), on a fresh dev stack: no 5xx, and every status,
# content type and body as documented.
# The Rust sources' formatting, and clippy with every warning an error.
lint-rust: web
	cargo fmt --check
	cargo clippy --workspace --all-targets -- -D warnings

test-api: build janus
	bash backend/fuzz/api-fuzz.sh

# room.test.mjs runs itself in a network namespace of its own (as root: tests/browser/netns.mjs).
test-browser: build browser janus
	node --test tests/browser/

# The deploy/ manifests as kubectl 1.20's kustomize renders them (and network-policy-node-ports.yaml,
# which a NodePort cluster adds by hand), each document checked offline against
# the schemas of a current Kubernetes, strictly (an unknown field fails): kubernetes-validate, pinned
# in deploy/validate-requirements.txt and installed once into a virtualenv outside the clone.
# tests/tests/kube_rbac.rs applies the same rendering to a real API server.
KUBE_VALIDATE_VERSION := 1.33.0
test-deploy: kube
	@venv="$$(bash anvil/python-tool.sh kubernetes-validate deploy/validate-requirements.txt)"; \
	  rendered="$$(mktemp)"; trap 'rm -f "$$rendered"' EXIT; \
	  "$$(bash anvil/kube-apiserver.sh kubectl)" kustomize deploy > "$$rendered"; \
	  echo --- >> "$$rendered"; cat deploy/network-policy-node-ports.yaml >> "$$rendered"; \
	  "$$venv/bin/kubernetes-validate" --strict --quiet -k $(KUBE_VALIDATE_VERSION) "$$rendered"; \
	  echo "deploy/: $$(grep -c '^kind:' "$$rendered") manifests valid for Kubernetes $(KUBE_VALIDATE_VERSION)"

demo: build janus
	cargo run -q -p conference-e2e --bin demo

# --- benchmarks ---------------------------------------------------------------------------------------

# Gas per operation of each pricing model, with its floor, beside Sablier Lockup, OpenZeppelin 4.9's
# PaymentSplitter and Escrow and a one-contract-per-agreement baseline, in one run on a local anvil, and
# a conference's cost in money beside card fees (contracts/bench/README.md). Prints tables and the
# targets (a MISS is reported, not failed); writes target/bench/gas.json. The floors read the escrow's
# storage layout, written beside the bench's build output. ETH_USD: the ETH price of the money figures.
ETH_USD ?= 3000
bench-gas: tools web contracts/bench/node_modules/.package-lock.json
	cd contracts && $(FORGE) build
	cd contracts/bench && $(FORGE) build
	cd contracts && $(FORGE) inspect ConferenceEscrow storageLayout --json > bench/out/ConferenceEscrow.storageLayout.json
	cargo run -q -p conference-e2e --bin gas-bench -- --eth-usd $(ETH_USD)

# The backend's figures on a fresh local stack (tests/src/bin/backend-bench.rs), written to
# target/bench/backend.json (issue 7's format): watcher catch-up over 100,000 escrow events (SQLite and
# PostgreSQL); signing block to deploy call and to activation receipt (p50, p99), resident memory and CPU
# at 1, 100, 1,000 and 10,000 live agreements with the no-op orchestrator and at 1, 100 and 1,000 with
# local rooms, and how each grows (no-op: over WebSocket new heads and HTTP polling); 2,000 agreements
# through the whole loop (agreements per second, each settlement checked); signing block to a local room
# answering; then signing block to deploy call over HTTP polling and WebSocket new heads. The backend (and so its rooms) and the bench are release builds,
# as an operator runs them. BENCH_SCALE=small runs every part at a tenth of its size or less.
BENCH_BIN := CONFERENCE_BACKEND_BIN=target/release/conference-backend target/release/backend-bench
ifeq ($(BENCH_SCALE),small)
BENCH_EVENTS := 5000
BENCH_NOOP_LIVE := 1,100,1000
BENCH_LOCAL_LIVE := 1,5
BENCH_AGREEMENTS := 300
BENCH_SAMPLES := 10
else
BENCH_EVENTS := 100000
BENCH_NOOP_LIVE := 1,100,1000,10000
BENCH_LOCAL_LIVE := 1,10,100
BENCH_AGREEMENTS := 2000
BENCH_SAMPLES := 50
endif
bench-backend: build postgres janus
	cargo build --release -p conference-backend -p conference-e2e
	rm -f target/bench/backend.json
	$(BENCH_BIN) catch-up --events $(BENCH_EVENTS)
	$(BENCH_BIN) loop --orchestrator noop --live $(BENCH_NOOP_LIVE) --samples $(BENCH_SAMPLES) --websocket
	$(BENCH_BIN) loop --orchestrator noop --live $(BENCH_NOOP_LIVE) --samples $(BENCH_SAMPLES)
	$(BENCH_BIN) loop --orchestrator local --live $(BENCH_LOCAL_LIVE) --samples $(BENCH_SAMPLES)
	$(BENCH_BIN) throughput --agreements $(BENCH_AGREEMENTS) --path account
	$(BENCH_BIN) throughput --agreements $(BENCH_AGREEMENTS) --path direct
	$(BENCH_BIN) room-start --samples 20
	$(BENCH_BIN) monitor-cost --conferences 100
	$(BENCH_BIN) streams --streams 1000 --database sqlite
	$(BENCH_BIN) streams --streams 1000 --database postgres
	$(BENCH_BIN) signin-burst --requests 5000 --concurrency 50
	$(BENCH_BIN) latency --live 1,100 --websocket

# 1,000 agreements through the whole loop with random SIGKILLs of the backend; fails if anything was
# lost, doubled or mis-charged. Not part of `make test` (it takes a while).
soak: build
	cargo run -q -p conference-e2e --bin backend-bench -- soak --agreements 1000

# The Kubernetes orchestrator: signed agreement to Service answering on a test API server, cold and from
# the warm pool (the stand-in node starts pods at once, then after 5 s as a real node pulling images
# might), and placement decisions per second for 100 clusters and 10,000 agreements (release build).
bench-kube: build kube
	cargo build --release -p conference-backend -p conference-e2e
	rm -f target/bench/kube.json
	CONFERENCE_BACKEND_BIN=target/release/conference-backend target/release/backend-bench kube-start --samples 10
	CONFERENCE_BACKEND_BIN=target/release/conference-backend target/release/backend-bench kube-start --samples 10 --websocket
	CONFERENCE_BACKEND_BIN=target/release/conference-backend target/release/backend-bench kube-start --samples 5 --node-delay-ms 5000 --websocket
	target/release/backend-bench placement --clusters 100 --agreements 10000

# The web app (tests/browser/bench.mjs): the production bundle (every file of web/dist, raw and gzip, the
# total and the first load), the offers page's time to interactive over 10 fresh loads and "Pay" to the
# join link over 5 dynamic-price agreements, in headless Chromium on the local stack served by the release
# backend, as an operator runs it. Writes target/bench/web.json. Then Lighthouse (tests/browser/lighthouse.mjs,
# its npm package from tests/browser/lighthouse/'s lock file, Debian's Chromium): the offers and audit pages,
# desktop and mobile, three runs each; the four scores and the first and largest paints, with issue 23's
# targets, to target/bench/lighthouse.json.
bench-web: build browser tests/browser/lighthouse/node_modules/.package-lock.json
	cargo build --release -p conference-backend
	CONFERENCE_BACKEND_BIN=target/release/conference-backend node tests/browser/bench.mjs
	CONFERENCE_BACKEND_BIN=target/release/conference-backend node tests/browser/lighthouse.mjs
tests/browser/lighthouse/node_modules/.package-lock.json: tests/browser/lighthouse/package.json tests/browser/lighthouse/package-lock.json
	cd tests/browser/lighthouse && npm ci --no-audit --no-fund --loglevel=error

# The local orchestrator's SFU (tests/browser/sfu-bench.mjs, in a network namespace of its own like room.test.mjs):
# the room page opened to the first remote video frame decoded (p50, p99); Janus's CPU (from /proc) per
# forwarded stream with as many real Chromium participants as this machine carries at 320x180, and what that
# makes in participants per core beside Jitsi Videobridge's and LiveKit's figures; a killed server to its
# first good probe (p50, max). Release backend. Writes target/bench/sfu.json.
bench-sfu: build browser janus
	cargo build --release -p conference-backend
	CONFERENCE_BACKEND_BIN=target/release/conference-backend node tests/browser/sfu-bench.mjs

# Every benchmark, then BENCHMARKS.md and BENCHMARKS.json at the root (tests/README.md, "Benchmarks").
# Gas is deterministic and measured once (target/bench/gas.json); the timed benchmarks run BENCH_RUNS
# times, each run's JSON moved to target/bench/runs/<i>/, and the report merges their samples per figure.
# A benchmark that fails stops the run; one that wrote no JSON is named in the report as not measured.
BENCH_RUNS ?= 3
bench:
	rm -rf target/bench
	$(MAKE) --no-print-directory bench-gas
	for i in $$(seq 1 $(BENCH_RUNS)); do \
	  echo "--- bench run $$i of $(BENCH_RUNS)"; \
	  $(MAKE) --no-print-directory bench-backend bench-kube bench-web bench-sfu; \
	  mkdir -p target/bench/runs/$$i; \
	  for f in target/bench/*.json; do [ "$$f" = target/bench/gas.json ] || mv "$$f" target/bench/runs/$$i/; done; \
	done
	$(MAKE) --no-print-directory bench-report BENCH_INVOCATION="make bench BENCH_RUNS=$(BENCH_RUNS)"

# BENCHMARKS.md and BENCHMARKS.json from whatever target/bench holds (tests/src/bin/bench-report.rs).
BENCH_INVOCATION ?= make bench
bench-report:
	cargo run -q -p conference-e2e --bin bench-report -- --invocation "$(BENCH_INVOCATION)"

# Sablier's published artifacts, from the bench's own lock file. --ignore-scripts: a dependency's
# postinstall (a forge-std symlink) fails under npm and nothing here needs it.
contracts/bench/node_modules/.package-lock.json: contracts/bench/package.json contracts/bench/package-lock.json
	cd contracts/bench && npm ci --no-audit --no-fund --loglevel=error --ignore-scripts
