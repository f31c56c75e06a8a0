#!/usr/bin/env node
// Runs the TypeScript sources through tsx so `npm install` is the whole install (no build step).
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

register();
const root = dirname(dirname(fileURLToPath(import.meta.url)));
await import(pathToFileURL(join(root, 'src', 'cli.ts')).href);
