#!/usr/bin/env node
// Records a deployment made by script/Deploy.s.sol (called by script/deploy.sh; not meant to be run alone).
//
//   node script/record-deployment.js <chainId>      (cwd: contracts/, RPC_URL and FOUNDRY_OUT in the environment)
//
// Reads forge's broadcast log (broadcast/Deploy.s.sol/<chainId>/run-latest.json), the artifacts and the
// build info of the compilation forge just ran, and the chain itself (cast), then writes
//   deployments/<chainId>.json                          addresses, transactions, blocks, arguments, compiler
//   deployments/<chainId>/<Contract>.standard-input.json the standard-JSON compiler input of each contract
// Everything read from forge's log is checked against the chain: forge 1.7.1 can record a transaction's
// hash against the wrong contract (foundry-rs/foundry#16715), so receipts are matched by contract address.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const contractsDir = path.resolve(__dirname, '..');
const root = path.dirname(contractsDir);
// cast itself (deploy.sh passes it in CAST), not the npm launcher in anvil/node_modules/.bin: that one
// always exits 0, so a failing call would go unnoticed.
const foundry = path.join(root, 'anvil/node_modules/@foundry-rs');
const cast = process.env.CAST
  || path.join(foundry, fs.readdirSync(foundry).find((d) => d.startsWith('cast-')) ?? 'cast-missing', 'bin/cast');
const { keccak256 } = require(require.resolve('js-sha3', { paths: [path.join(root, 'anvil/node_modules/solc')] }));

const chainId = process.argv[2];
const rpcUrl = process.env.RPC_URL;
if (!/^\d+$/.test(chainId || '') || !rpcUrl) fail('usage: RPC_URL=... node script/record-deployment.js <chainId>');
const outDir = path.resolve(contractsDir, process.env.FOUNDRY_OUT || 'out');

// The contracts deployed, with the source they come from.
const SOURCES = {
  ProviderRegistry: 'src/ProviderRegistry.sol',
  ConferenceEscrow: 'src/ConferenceEscrow.sol',
  OfferBook: 'src/OfferBook.sol',
};

function fail(message) {
  process.stderr.write(`record-deployment: ${message}\n`);
  process.exit(1);
}
function castRun(...args) {
  return execFileSync(cast, [...args, '--rpc-url', rpcUrl], { encoding: 'utf8', timeout: 120000 }).trim();
}
const lower = (a) => String(a).toLowerCase();
const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
const strip0x = (hex) => hex.replace(/^0x/, '');
const checksum = (a) => execFileSync(cast, ['to-check-sum-address', a], { encoding: 'utf8' }).trim();

// --- what forge compiled -----------------------------------------------------------------------------
const artifacts = {};
for (const [name, source] of Object.entries(SOURCES)) {
  const artifact = readJson(path.join(outDir, path.basename(source), `${name}.json`));
  artifacts[name] = { ...artifact, meta: JSON.parse(artifact.rawMetadata) };
}
// The build info holding these artifacts (the newest one that compiled the same runtime code).
const buildInfos = fs.readdirSync(path.join(outDir, 'build-info'))
  .map((f) => path.join(outDir, 'build-info', f))
  .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
let buildInfo;
for (const file of buildInfos) {
  const info = readJson(file);
  const escrow = info.output?.contracts?.[SOURCES.ConferenceEscrow]?.ConferenceEscrow;
  if (escrow && strip0x(escrow.evm.deployedBytecode.object) === strip0x(artifacts.ConferenceEscrow.deployedBytecode.object)) {
    buildInfo = info;
    break;
  }
}
if (!buildInfo) fail(`no build info in ${outDir}/build-info matches the artifacts (run forge with --build-info)`);

// The standard-JSON input of one contract: exactly the sources the compiler read for it (its metadata's
// list, each checked against the keccak256 the metadata records), the settings of the compilation, and
// an output selection with what verification needs. Sources forge passed come from the build info;
// the ones solc loaded through the import callback (OpenZeppelin's relative imports) from disk.
function standardInput(name) {
  const { meta } = artifacts[name];
  const sources = {};
  for (const [unit, { keccak256: expected }] of Object.entries(meta.sources)) {
    const content = buildInfo.input.sources[unit]?.content ?? fs.readFileSync(path.resolve(contractsDir, unit), 'utf8');
    if (`0x${keccak256(content)}` !== expected) fail(`${unit} changed since it was compiled; deploy again`);
    sources[unit] = { content };
  }
  const s = buildInfo.input.settings;
  return {
    language: 'Solidity',
    sources,
    settings: {
      remappings: s.remappings,
      optimizer: s.optimizer,
      metadata: s.metadata,
      evmVersion: s.evmVersion,
      viaIR: s.viaIR ?? false,
      libraries: s.libraries ?? {},
      outputSelection: {
        '*': {
          '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.deployedBytecode.immutableReferences', 'metadata'],
        },
      },
    },
  };
}

// Splits init code into the artifact's creation code and the ABI-encoded constructor arguments, and
// decodes them by the constructor's ABI.
function constructorArguments(name, initCode) {
  const creation = strip0x(artifacts[name].bytecode.object);
  const init = strip0x(initCode);
  if (!init.startsWith(creation)) fail(`${name}: the deployed init code is not the compiled creation code`);
  const encoded = `0x${init.slice(creation.length)}`;
  const inputs = artifacts[name].abi.find((e) => e.type === 'constructor')?.inputs ?? [];
  const decoded = {};
  if (inputs.length) {
    const values = execFileSync(cast, ['abi-decode', '--input', `constructor(${inputs.map((i) => i.type).join(',')})`, encoded], { encoding: 'utf8' })
      .trim().split('\n');
    inputs.forEach((input, i) => {
      const value = values[i].replace(/ \[.*\]$/, '');
      const small = /^uint([1-9]|[1-4]\d)$/.test(input.type); // fits a JSON number exactly
      decoded[input.name] = small ? Number(value) : value;
    });
  }
  return { decoded, encoded };
}

// --- what was deployed ---------------------------------------------------------------------------------
const run = readJson(path.join(contractsDir, 'broadcast/Deploy.s.sol', chainId, 'run-latest.json'));
if (Number(run.chain) !== Number(chainId)) fail(`broadcast log is for chain ${run.chain}, not ${chainId}`);
if (run.timestamp < Number(process.env.DEPLOY_STARTED_MS || 0)) fail('the broadcast log is older than this deployment');

const contracts = {};
let deployer;
for (const tx of run.transactions) {
  if (tx.transactionType !== 'CREATE' || !(tx.contractName in SOURCES)) continue;
  const address = lower(tx.contractAddress);
  const logged = run.receipts.find((r) => lower(r.contractAddress) === address);
  if (!logged) fail(`no receipt for ${tx.contractName} at ${address}`);
  const receipt = JSON.parse(castRun('receipt', logged.transactionHash, '--json'));
  if (lower(receipt.contractAddress) !== address || receipt.status !== '0x1') {
    fail(`transaction ${logged.transactionHash} did not create ${tx.contractName} at ${address}`);
  }
  deployer = checksum(receipt.from);
  const args = constructorArguments(tx.contractName, castRun('tx', receipt.transactionHash, 'input'));
  contracts[tx.contractName] = {
    address: checksum(address),
    transactionHash: receipt.transactionHash,
    blockNumber: Number(receipt.blockNumber),
    args,
    nested: tx.additionalContracts ?? [],
  };
}
for (const name of ['ProviderRegistry', 'ConferenceEscrow']) if (!contracts[name]) fail(`${name} is not in the broadcast log`);

// The offer book, created by the escrow's constructor in the same transaction.
const escrow = contracts.ConferenceEscrow;
const book = castRun('call', escrow.address, 'BOOK()(address)');
const nested = escrow.nested.find((c) => lower(c.address) === lower(book) && c.contractName === 'OfferBook');
if (!nested) fail(`BOOK() = ${book} is not the OfferBook forge saw the escrow create`);
contracts.OfferBook = {
  address: checksum(book),
  transactionHash: escrow.transactionHash,
  blockNumber: escrow.blockNumber,
  args: constructorArguments('OfferBook', nested.initCode),
  createdBy: 'ConferenceEscrow',
};
if (lower(contracts.OfferBook.args.decoded.escrow) !== lower(escrow.address)) fail('OfferBook.ESCROW is not the escrow');

// --- written -------------------------------------------------------------------------------------------
const deploymentsDir = path.join(contractsDir, 'deployments');
fs.mkdirSync(path.join(deploymentsDir, chainId), { recursive: true });
const settings = buildInfo.input.settings;
const record = {
  chainId: Number(chainId),
  deployer,
  contracts: {},
  compiler: {
    solcVersion: artifacts.ConferenceEscrow.meta.compiler.version,
    solcLongVersion: execFileSync('node', [path.join(root, 'anvil/solc'), '--version'], { encoding: 'utf8' }).trim().split('\n').pop().replace(/^Version: /, ''),
    solcBuild: `solc-js ${readJson(path.join(root, 'anvil/node_modules/solc/package.json')).version} from npm (emscripten build), run by anvil/solc`,
    language: 'Solidity',
    optimizer: settings.optimizer,
    evmVersion: settings.evmVersion,
    viaIR: settings.viaIR ?? false,
    bytecodeHash: settings.metadata.bytecodeHash,
    cborMetadata: settings.metadata.appendCBOR,
    remappings: settings.remappings,
  },
};
for (const name of Object.keys(SOURCES)) {
  const c = contracts[name];
  const inputFile = `${chainId}/${name}.standard-input.json`;
  fs.writeFileSync(path.join(deploymentsDir, inputFile), `${JSON.stringify(standardInput(name), null, 2)}\n`);
  record.contracts[name] = {
    address: c.address,
    contract: `${SOURCES[name]}:${name}`,
    transactionHash: c.transactionHash,
    blockNumber: c.blockNumber,
    ...(c.createdBy ? { createdBy: c.createdBy } : {}),
    constructorArguments: c.args.decoded,
    constructorArgumentsEncoded: c.args.encoded,
    standardJsonInput: inputFile,
  };
}
const file = path.join(deploymentsDir, `${chainId}.json`);
fs.writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
process.stdout.write(`wrote ${path.relative(root, file)} and ${Object.keys(SOURCES).length} standard inputs in ${path.relative(root, path.join(deploymentsDir, chainId))}/\n`);
