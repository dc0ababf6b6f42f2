/**
 * Loaded with `node --require` before the CLI in memory tests: writes the process's peak resident
 * set size (KiB, `process.resourceUsage().maxRSS`) to $CLOUDROOTFS_PEAK_RSS_FILE as it exits.
 */
'use strict';
const fs = require('node:fs');

const file = process.env.CLOUDROOTFS_PEAK_RSS_FILE;
if (file) process.on('exit', () => fs.writeFileSync(file, String(process.resourceUsage().maxRSS)));
