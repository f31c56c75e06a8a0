#!/usr/bin/env node
// Bundles src/ into dist/boocoder.mjs (run by `npm install` through the `prepare` script).
// The bundle is what bin/boocoder.js runs: it starts faster and holds about 40 MB less than
// compiling the TypeScript sources with tsx at run time. Packages stay external (node_modules).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

await build({
  entryPoints: [join(root, 'src', 'cli.ts')],
  outfile: join(root, 'dist', 'boocoder.mjs'),
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
});
