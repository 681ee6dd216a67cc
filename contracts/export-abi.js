#!/usr/bin/env node
// Writes the parts of a forge artifact that the backend reads to stdout: the ABI and creation bytecode
// (its `sol!` bindings) and the compiler settings from the artifact's metadata (version, optimizer, EVM
// version: what `GET /api/config` tells auditors to verify the deployed code with).
// `node export-abi.js out/X.sol/X.json > ../backend/abi/X.json`. The committed copy is checked
// against a fresh build by `make check-abi`.
'use strict';
const artifact = require(require('path').resolve(process.argv[2]));
const metadata = typeof artifact.metadata === 'string' ? JSON.parse(artifact.metadata) : artifact.metadata;
const { optimizer, evmVersion } = metadata.settings;
const trimmed = {
  abi: artifact.abi,
  bytecode: { object: artifact.bytecode.object },
  compiler: {
    version: metadata.compiler.version,
    optimizer: { enabled: optimizer.enabled, runs: optimizer.runs },
    evmVersion,
  },
};
process.stdout.write(JSON.stringify(trimmed, null, 1) + '\n');
