import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dataDirLockPath } from '../../src/db/data-dir-lock.js';
import type { Db } from '../../src/db/db.js';
import { openPgliteDb } from '../../src/db/pglite.js';
import { isBoocoderError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const pgliteModule = fileURLToPath(new URL('../../src/db/pglite.ts', import.meta.url));
const logModule = fileURLToPath(new URL('../../src/log.ts', import.meta.url));

let home: string;
let dataDir: string;
const open: Db[] = [];

beforeEach(() => {
  home = realpathSync(mkdtempSync(join(tmpdir(), 'boocoder-pglite-')));
  dataDir = join(home, 'data');
});

afterEach(async () => {
  for (const db of open.splice(0)) await db.close();
  rmSync(home, { recursive: true, force: true });
});

async function openHere(): Promise<Db> {
  const db = await openPgliteDb({ dataDir, logger: silentLogger });
  open.push(db);
  return db;
}

describe('PGlite data directory lock', () => {
  it('creates the data directory 0700 and refuses a second open in the same process', async () => {
    const db = await openHere();
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    const err = await openPgliteDb({ dataDir, logger: silentLogger }).catch((e: unknown) => e);
    expect(isBoocoderError(err, 'E_DATA_DIR_LOCKED')).toBe(true);
    expect((err as Error).message).toContain(`boocoder process ${process.pid}`);
    // The refused open did not disturb the first one.
    expect((await db.query<{ v: number }>('SELECT 1 AS v')).rows).toEqual([{ v: 1 }]);
  });

  it('releases the lock on close, so the data can be reopened', async () => {
    const db = await openHere();
    await db.query('CREATE TABLE kept (x INT); INSERT INTO kept VALUES (42)');
    await db.close();
    expect(existsSync(dataDirLockPath(dataDir))).toBe(false);
    const again = await openPgliteDb({ dataDir, logger: silentLogger });
    open.push(again);
    expect((await again.query<{ x: number }>('SELECT x FROM kept')).rows).toEqual([{ x: 42 }]);
  });

  it('refuses an open from a second process while this one holds the directory', async () => {
    await openHere();
    const script = join(home, 'second-open.mts');
    writeFileSync(
      script,
      `import { openPgliteDb } from ${JSON.stringify(pgliteModule)};
import { silentLogger } from ${JSON.stringify(logModule)};
try { const db = await openPgliteDb({ dataDir: ${JSON.stringify(dataDir)}, logger: silentLogger }); await db.close(); console.log('opened'); }
catch (err) { console.log(err.code ?? err.message); }
`,
    );
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], {
      cwd: repoRoot,
    });
    expect(stdout.trim()).toBe('E_DATA_DIR_LOCKED');
  }, 60_000);

  it('breaks a stale lock left by a dead process', async () => {
    const child = spawn(process.execPath, ['-e', '']);
    await once(child, 'exit');
    writeFileSync(
      dataDirLockPath(dataDir),
      JSON.stringify({ pid: child.pid, hostname: hostname(), startedAt: Date.now(), token: 'dead' }),
    );
    const db = await openHere();
    expect((await db.query<{ v: number }>('SELECT 1 AS v')).rows).toEqual([{ v: 1 }]);
  });
});
