#!/usr/bin/env node
/**
 * `npm test`: make sure the referee tools are installed (apt-get as root), then run the whole
 * jest suite. Extra arguments go to jest (`npm test -- spec/layer`).
 */
'use strict';
const { spawnSync } = require('node:child_process');
const { ensureTools } = require('./ensure-tools');

ensureTools();
const jest = require.resolve('jest/bin/jest');
const result = spawnSync(process.execPath, [jest, ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(result.status === null ? 1 : result.status);
