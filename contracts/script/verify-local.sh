#!/usr/bin/env bash
# The auditor's check: recompiles every contract of a deployment from its stored standard-JSON input with
# the pinned compiler, and compares the result with the code on chain.
#
#   contracts/script/verify-local.sh contracts/deployments/<chainId>.json <rpc-url>
#
# For each contract it prints
#   runtime  MATCH/MISMATCH   `cast code <address>` against the compiled runtime code, with the immutables'
#                             bytes (the compiler's immutableReferences) masked on both sides; the values
#                             found there on chain are printed, so they can be checked too
#   creation MATCH/MISMATCH   the deployment transaction's input against the compiled creation code
#                             followed by the recorded constructor arguments (for contracts deployed by a
#                             transaction; OfferBook's creation code is inside ConferenceEscrow's)
#   sources  whether the verified sources are those of this checkout (information only)
# and exits 1 if anything does not match. The compilation runs in an empty directory, so it can only use
# the sources in the input. Needs node, the npm tools of anvil/ (`make tools`) and the RPC endpoint; no key.
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 <deployments/<chainId>.json> <rpc-url>" >&2; exit 2; }
record="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
rpc_url="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# cast itself, not the npm launcher in anvil/node_modules/.bin (which always exits 0).
cast="$(compgen -G "$root/anvil/node_modules/@foundry-rs/cast-*/bin/cast" | head -n 1 || true)"
solc="$root/anvil/solc"
[[ -x "$cast" && -f "$solc" ]] || { echo "verify-local.sh: cast or anvil/solc missing: run make tools" >&2; exit 1; }

chain="$("$cast" chain-id --rpc-url "$rpc_url")"
recorded_chain="$(node -p 'require(process.argv[1]).chainId' "$record")"
[[ "$chain" == "$recorded_chain" ]] || { echo "the RPC serves chain $chain, the record is for chain $recorded_chain" >&2; exit 1; }
echo "chain $chain, compiler $(node "$solc" --version | tail -1 | sed "s/^Version: //")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

status=0
for name in $(node -p 'Object.keys(require(process.argv[1]).contracts).join(" ")' "$record"); do
  read -r address contract input tx < <(node -p '
    const r = require(process.argv[1]), c = r.contracts[process.argv[2]];
    [c.address, c.contract, require("path").join(require("path").dirname(process.argv[1]), c.standardJsonInput),
     c.createdBy ? "-" : c.transactionHash].join(" ")' "$record" "$name")

  echo "$name $address ($contract)"
  # Asks for the AST too, to name the immutables (what is selected for output does not change the code).
  node -e '
    const input = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    input.settings.outputSelection = { "*": { "": ["ast"], "*": ["evm.bytecode.object", "evm.deployedBytecode.object",
      "evm.deployedBytecode.immutableReferences"] } };
    process.stdout.write(JSON.stringify(input));' "$input" |
    (cd "$work" && node "$solc" --standard-json > "$work/$name.out.json")
  "$cast" code "$address" --rpc-url "$rpc_url" > "$work/$name.code"
  if [[ "$tx" != "-" ]]; then "$cast" tx "$tx" input --rpc-url "$rpc_url" > "$work/$name.init"; fi

  node - "$work" "$name" "$contract" "$record" "$input" "$root/contracts" <<'EOF' || status=1
const fs = require('fs');
const path = require('path');
const [work, name, contract, record, input, checkout] = process.argv.slice(2);
const [source, contractName] = contract.split(':');
const out = JSON.parse(fs.readFileSync(`${work}/${name}.out.json`, 'utf8'));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
if (errors.length) {
  console.log(`${name}: compilation failed\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  process.exit(1);
}
const evm = out.contracts[source][contractName].evm;
const hex = (s) => s.trim().replace(/^0x/, '').toLowerCase();
const onchain = hex(fs.readFileSync(`${work}/${name}.code`, 'utf8'));
const compiled = hex(evm.deployedBytecode.object);

// The immutables' names and types, from the AST.
const declarations = {};
(function walk(node) {
  if (Array.isArray(node)) return node.forEach(walk);
  if (!node || typeof node !== 'object') return;
  if (node.nodeType === 'VariableDeclaration' && node.mutability === 'immutable') {
    declarations[node.id] = { name: node.name, type: node.typeDescriptions.typeString };
  }
  Object.values(node).forEach(walk);
})(Object.values(out.sources).map((s) => s.ast));
const show = (word, type) => {
  if (/^(address|contract )/.test(type)) return `0x${word.slice(24)}`;
  if (/^uint\d+$/.test(type)) return BigInt(`0x${word}`).toString();
  return `0x${word}`;
};

// Zero the immutables' bytes on both sides, and collect the values the chain holds there.
const a = onchain.split(''), b = compiled.split('');
const values = [];
let masked = 0;
for (const [id, refs] of Object.entries(evm.deployedBytecode.immutableReferences || {})) {
  const { name: variable, type } = declarations[id] || { name: `#${id}`, type: '' };
  const seen = new Set();
  for (const { start, length } of refs) {
    const word = onchain.slice(2 * start, 2 * (start + length));
    seen.add(word);
    for (let i = 2 * start; i < 2 * (start + length); i++) { a[i] = '0'; b[i] = '0'; }
    masked += length;
  }
  // One immutable holds one value at every place it is read; anything else is a mismatch.
  values.push(seen.size === 1 ? `${variable}=${show([...seen][0], type)}` : `${variable}=<${seen.size} different values>`);
  if (seen.size !== 1) masked = NaN;
}
let ok = onchain.length === compiled.length && a.join('') === b.join('') && !Number.isNaN(masked);
console.log(`  runtime  ${ok ? 'MATCH' : 'MISMATCH'}  (${onchain.length / 2} bytes, ${masked} immutable bytes masked)`);
if (values.length) console.log(`           immutables on chain: ${values.join(', ')}`);

const initFile = `${work}/${name}.init`;
if (fs.existsSync(initFile)) {
  const args = hex(JSON.parse(fs.readFileSync(record, 'utf8')).contracts[name].constructorArgumentsEncoded);
  const creationOk = hex(fs.readFileSync(initFile, 'utf8')) === hex(evm.bytecode.object) + args;
  console.log(`  creation ${creationOk ? 'MATCH' : 'MISMATCH'}  (transaction input = compiled creation code + recorded constructor arguments)`);
  ok = ok && creationOk;
}

// Informational: are the verified sources those of this checkout?
const differ = Object.entries(JSON.parse(fs.readFileSync(input, 'utf8')).sources).filter(([unit, { content }]) => {
  try { return fs.readFileSync(path.resolve(checkout, unit), 'utf8') !== content; } catch { return true; }
}).map(([unit]) => unit);
console.log(`  sources  ${differ.length ? `differ from this checkout: ${differ.join(', ')}` : 'identical to this checkout'}`);
process.exit(ok ? 0 : 1);
EOF
done

if [[ $status -eq 0 ]]; then echo "all contracts MATCH"; else echo "MISMATCH found" >&2; fi
exit $status
