import { chmodSync, existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.js';
import { migrate } from '../../src/db/migrate.js';
import { embeddedDataDir, openDatabase } from '../../src/db/open.js';
import { openPgliteDb } from '../../src/db/pglite.js';
import { CARRIED_OVER_SUFFIX } from '../../src/db/pglite-carry-over.js';
import { silentLogger } from '../../src/log.js';
import { insertSessionFor, queueAgentTask } from '../helpers/chaos-tasks.js';

let root: string;
let home: string;
let pgDir: string;
const open: Db[] = [];

beforeEach(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'boocoder-carry-over-')));
  chmodSync(root, 0o755); // as root, postgres runs as `nobody`, who must reach pgDir
  home = join(root, 'home');
  pgDir = join(root, 'pg');
});

afterEach(async () => {
  for (const db of open.splice(0)) await db.close();
  rmSync(root, { recursive: true, force: true });
});

/** A home as the previous version left it: PGlite in data/, boocoder's tables in public. */
async function oldHome(): Promise<{ taskId: string; seq: number }> {
  const lite = await openPgliteDb({ dataDir: embeddedDataDir(home), logger: silentLogger, schema: 'public' });
  try {
    await migrate(lite, { logger: silentLogger });
    const ids = await insertSessionFor(lite, '/carried/repo');
    const taskId = await queueAgentTask(lite, ids, 'write carried.txt yes');
    const { rows } = await lite.query<{ seq: number }>('SELECT seq FROM tasks WHERE id = $1', [taskId]);
    return { taskId, seq: rows[0]?.seq as number };
  } finally {
    await lite.close();
  }
}

describe('an embedded home from the PGlite days', () => {
  it('is carried over into the embedded PostgreSQL with its rows and ids, and data/ is kept aside', async () => {
    const before = await oldHome();
    const db = await openDatabase({ home, pgDir, logger: silentLogger });
    open.push(db);
    expect(db.schema).toBe('boocoder');
    const { rows } = await db.query<{ id: string; seq: number; input: string; root_path: string }>(
      `SELECT t.id, t.seq, t.input, p.root_path FROM tasks t JOIN projects p ON p.id = t.project_id`,
    );
    expect(rows).toEqual([
      { id: before.taskId, seq: before.seq, input: 'write carried.txt yes', root_path: '/carried/repo' },
    ]);
    expect(existsSync(embeddedDataDir(home))).toBe(false);
    expect(existsSync(`${embeddedDataDir(home)}${CARRIED_OVER_SUFFIX}`)).toBe(true);
    // The identity sequence continues after the copied rows: FIFO order holds for the next task.
    const next = await insertSessionFor(db, '/carried/other');
    const nextId = await queueAgentTask(db, next, 'later');
    const later = await db.query<{ seq: number }>('SELECT seq FROM tasks WHERE id = $1', [nextId]);
    expect(later.rows[0]?.seq).toBeGreaterThan(before.seq);
  });

  it('is carried over once: a restart finds its rows and no second copy', async () => {
    await oldHome();
    const first = await openDatabase({ home, pgDir, logger: silentLogger });
    await first.close();
    const again = await openDatabase({ home, pgDir, logger: silentLogger });
    open.push(again);
    const { rows } = await again.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks');
    expect(rows).toEqual([{ n: 1 }]);
  });
});
