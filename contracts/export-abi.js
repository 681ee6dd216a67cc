#!/usr/bin/env node
// Writes the ABI and creation bytecode of a forge artifact, the parts the backend's `sol!` bindings
// read, to stdout: `node export-abi.js out/X.sol/X.json > ../backend/abi/X.json`. The committed copy
// is checked against a fresh build by `make check-abi`.
'use strict';
const artifact = require(require('path').resolve(process.argv[2]));
const trimmed = { abi: artifact.abi, bytecode: { object: artifact.bytecode.object } };
process.stdout.write(JSON.stringify(trimmed, null, 1) + '\n');
