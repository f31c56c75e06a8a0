/**
 * bin/boocoder.js runs the bundle `npm install` built only while it is newer than every source
 * file, so an edited checkout never runs stale code; otherwise it compiles the sources with tsx.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '..', '..');

describe('bin/boocoder.js', () => {
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'boocoder-bin-'));
    await mkdir(join(root, 'bin'));
    await mkdir(join(root, 'dist'));
    await mkdir(join(root, 'src', 'nested'), { recursive: true });
    await copyFile(join(REPO, 'bin', 'boocoder.js'), join(root, 'bin', 'boocoder.js'));
    await symlink(join(REPO, 'node_modules'), join(root, 'node_modules'));
    await writeFile(join(root, 'package.json'), '{"type":"module"}');
    await writeFile(join(root, 'dist', 'boocoder.mjs'), "process.stdout.write('bundle');\n");
    await writeFile(
      join(root, 'src', 'cli.ts'),
      "const from: string = 'sources';\nprocess.stdout.write(from);\n",
    );
    await writeFile(join(root, 'src', 'nested', 'other.ts'), 'export {};\n');
  });

  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  const launch = async () => (await run(process.execPath, [join(root, 'bin', 'boocoder.js')])).stdout;
  const setMtime = (path: string, seconds: number) => utimes(join(root, path), seconds, seconds);

  it('runs the bundle when it is newer than every source file', async () => {
    await setMtime('src/cli.ts', 1_000);
    await setMtime('src/nested/other.ts', 1_000);
    await setMtime('dist/boocoder.mjs', 2_000);
    expect(await launch()).toBe('bundle');
  });

  it('runs the sources through tsx when any source file, however deep, is newer', async () => {
    await setMtime('src/nested/other.ts', 3_000);
    expect(await launch()).toBe('sources');
  });

  it('runs the sources when there is no bundle', async () => {
    await rm(join(root, 'dist', 'boocoder.mjs'));
    expect(await launch()).toBe('sources');
  });
});
