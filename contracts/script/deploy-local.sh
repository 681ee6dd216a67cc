#!/usr/bin/env bash
# `make deploy-contracts`: the whole flow against a throwaway anvil. Starts anvil on a free loopback port,
# deploys with anvil's dev account 0 through script/deploy.sh (default parameters), which writes
# contracts/deployments/31337.json and its standard inputs, checks the result with script/verify-local.sh,
# and stops anvil.
set -euo pipefail

contracts="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The platform binaries themselves: the npm launchers in anvil/node_modules/.bin always exit 0.
tool() { compgen -G "$(dirname "$contracts")/anvil/node_modules/@foundry-rs/$1-*/bin/$1" | head -n 1 || true; }
anvil="$(tool anvil)" cast="$(tool cast)"
[[ -x "$anvil" && -x "$cast" ]] || { echo "deploy-local.sh: anvil or cast missing: run make tools" >&2; exit 1; }

port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
rpc="http://127.0.0.1:$port"
"$anvil" --host 127.0.0.1 --port "$port" --chain-id 31337 --silent &
anvil_pid=$!
trap 'kill "$anvil_pid" 2> /dev/null || true; wait "$anvil_pid" 2> /dev/null || true' EXIT
for _ in $(seq 100); do
  "$cast" chain-id --rpc-url "$rpc" > /dev/null 2>&1 && break
  kill -0 "$anvil_pid" 2> /dev/null || { echo "anvil did not start" >&2; exit 1; }
  sleep 0.1
done
echo "anvil on $rpc (pid $anvil_pid)"

# Anvil's dev account 0: a publicly known test key, for local chains only. The defaults of every other
# parameter, whatever the caller's environment holds, so that the example record is reproducible.
env -u ADMIN -u OPERATOR -u ACTIVATION_WINDOW -u SETTLEMENT_WINDOW -u VOTING_PERIOD \
  RPC_URL="$rpc" DEPLOYER_PRIVATE_KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 \
  "$contracts/script/deploy.sh"

"$contracts/script/verify-local.sh" "$contracts/deployments/31337.json" "$rpc"
