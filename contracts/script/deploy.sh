#!/usr/bin/env bash
# Deploys ProviderRegistry and ConferenceEscrow (with its OfferBook) and records the deployment.
#
#   RPC_URL=https://... DEPLOYER_PRIVATE_KEY=0x... contracts/script/deploy.sh [extra forge script flags]
#
# Optional: ADMIN, OPERATOR (default: the deployer), ACTIVATION_WINDOW (600), SETTLEMENT_WINDOW (86400),
# VOTING_PERIOD (259200). Extra flags go to `forge script`, e.g. --with-gas-price 2gwei.
# Writes contracts/deployments/<chainId>.json and contracts/deployments/<chainId>/<Contract>.standard-input.json.
# The key is only ever read from the environment by the forge script; it is never printed nor put on a
# command line.
set -euo pipefail

: "${RPC_URL:?set RPC_URL to the JSON-RPC endpoint of the chain}"
: "${DEPLOYER_PRIVATE_KEY:?set DEPLOYER_PRIVATE_KEY to the private key of the deploying account}"
# forge reads "0x…" as hex and anything else as decimal: a key written without 0x gets it.
[[ "$DEPLOYER_PRIVATE_KEY" == 0x* ]] || DEPLOYER_PRIVATE_KEY="0x$DEPLOYER_PRIVATE_KEY"
export RPC_URL DEPLOYER_PRIVATE_KEY

contracts="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The platform binaries themselves: the npm launchers in anvil/node_modules/.bin always exit 0.
tool() { compgen -G "$(dirname "$contracts")/anvil/node_modules/@foundry-rs/$1-*/bin/$1" | head -n 1 || true; }
forge="$(tool forge)" cast="$(tool cast)"
[[ -x "$forge" && -x "$cast" ]] || { echo "deploy.sh: forge or cast missing: run make tools" >&2; exit 1; }
export CAST="$cast"
cd "$contracts"

# A build of its own (only the script and what it imports), apart from the out/ and cache/ that
# `forge build` and `forge test` use, so that concurrent builds cannot mix artifacts into the record.
export FOUNDRY_OUT=cache/deploy/out FOUNDRY_CACHE_PATH=cache/deploy/cache

chain_id="$("$cast" chain-id --rpc-url "$RPC_URL")"
echo "deploying to chain $chain_id"

export DEPLOY_STARTED_MS="$(date +%s%3N)"
# --slow: each transaction is sent once the previous one is mined.
"$forge" script script/Deploy.s.sol:Deploy --rpc-url "$RPC_URL" --broadcast --slow --build-info "$@"

node script/record-deployment.js "$chain_id"
