#!/usr/bin/env node
/** After tsc: copy non-TypeScript assets (JSON schemas) next to the compiled modules, and mark the CLI executable. */
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
function copyDir(rel, filter) {
  const from = path.join(root, rel);
  if (!fs.existsSync(from)) return;
  const to = path.join(root, 'dist', rel);
  fs.mkdirSync(to, { recursive: true });
  for (const name of fs.readdirSync(from)) {
    if (filter(name)) fs.copyFileSync(path.join(from, name), path.join(to, name));
  }
}
copyDir('lib/image/schema/json', (n) => n.endsWith('.json'));
copyDir('lib/sealer/schemas', (n) => n.endsWith('.json'));
copyDir('lib/build/schemas', (n) => n.endsWith('.json'));
const cli = path.join(root, 'dist/lib/cli/main.js');
if (fs.existsSync(cli)) fs.chmodSync(cli, 0o755);
