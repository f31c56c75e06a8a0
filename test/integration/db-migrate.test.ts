import { copyFileSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.js';
import { defaultMigrationsDir, migrate } from '../../src/db/migrate.js';
import { createPgDb } from '../../src/db/pg.js';
import { isBoocoderError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { databaseBackends, describeEachDatabase, type TestDatabase } from '../helpers/databases.js';

const logger = silentLogger;

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

for (const backend of databaseBackends()) {
  describe(`migrate [${backend.name}]`, () => {
    const opened: TestDatabase[] = [];
    const extraDbs: Db[] = [];
    const dirs: string[] = [];

    afterEach(async () => {
      for (const db of extraDbs.splice(0)) await db.close();
      for (const t of opened.splice(0)) await t.close();
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    });

    async function emptyDatabase(): Promise<TestDatabase> {
      const t = await backend.create({ migrated: false });
      opened.push(t);
      return t;
    }

    /** A copy of the real migrations that a test may add to or tamper with. */
    function migrationsCopy(): string {
      const dir = realpathSync(mkdtempSync(join(tmpdir(), 'boocoder-sql-')));
      dirs.push(dir);
      const source = defaultMigrationsDir();
      for (const file of readdirSync(source)) copyFileSync(join(source, file), join(dir, file));
      return dir;
    }

    it('applies every migration on an empty database, then is a no-op', async () => {
      const { db } = await emptyDatabase();
      const first = await migrate(db, { logger });
      expect(first.applied[0]).toBe('0001_init.sql');
      expect(first.current).toBeGreaterThanOrEqual(1);
      const second = await migrate(db, { logger });
      expect(second).toEqual({ applied: [], current: first.current });
      const { rows } = await db.query<{ version: number; checksum: string }>(
        'SELECT version, checksum FROM boocoder_migrations ORDER BY version',
      );
      expect(rows.map((r) => r.version)).toEqual(first.applied.map((f) => Number(f.slice(0, 4))));
      expect(rows[0]?.checksum).toMatch(/^[0-9a-f]{64}$/);
    });

    it('applies only the new migration when one is added', async () => {
      const { db } = await emptyDatabase();
      const dir = migrationsCopy();
      const before = await migrate(db, { dir, logger });
      writeFileSync(
        join(dir, '9000_extra.sql'),
        'CREATE TABLE extra_thing (id INT);\nINSERT INTO extra_thing VALUES (1);',
      );
      const after = await migrate(db, { dir, logger });
      expect(after).toEqual({ applied: ['9000_extra.sql'], current: 9000 });
      expect(before.current).toBeLessThan(9000);
      expect((await db.query('SELECT * FROM extra_thing')).rowCount).toBe(1);
    });

    it('refuses with E_MIGRATION_CHECKSUM when an applied migration file changed', async () => {
      const { db } = await emptyDatabase();
      const dir = migrationsCopy();
      await migrate(db, { dir, logger });
      writeFileSync(join(dir, '0001_init.sql'), '-- edited after the fact\nSELECT 1;');
      const err = await caught(migrate(db, { dir, logger }));
      expect(isBoocoderError(err, 'E_MIGRATION_CHECKSUM')).toBe(true);
      expect((err as Error).message).toContain('0001_init.sql');
    });

    it('refuses with E_DATABASE_NEWER when the database has a version the code does not know', async () => {
      const { db } = await emptyDatabase();
      await migrate(db, { logger });
      await db.query(
        "INSERT INTO boocoder_migrations (version, name, checksum) VALUES (9999, 'future', 'x')",
      );
      const err = await caught(migrate(db, { logger }));
      expect(isBoocoderError(err, 'E_DATABASE_NEWER')).toBe(true);
      expect((err as Error).message).toContain('version 9999');
    });

    it('rolls back a failing migration and records nothing for it', async () => {
      const { db } = await emptyDatabase();
      const dir = migrationsCopy();
      await migrate(db, { dir, logger });
      writeFileSync(
        join(dir, '9001_broken.sql'),
        'CREATE TABLE half_done (id INT);\nSELECT no_such_function();',
      );
      await expect(migrate(db, { dir, logger })).rejects.toThrow(/no_such_function/);
      const { rows } = await db.query("SELECT 1 FROM pg_tables WHERE tablename = 'half_done'");
      expect(rows).toHaveLength(0);
      expect((await db.query('SELECT 1 FROM boocoder_migrations WHERE version = 9001')).rowCount).toBe(0);
    });

    it('applies each migration once when four handles migrate one database concurrently', async () => {
      const target = await emptyDatabase();
      const handles: Db[] = [target.db];
      if (target.connectionString) {
        // Four separate pools: four sessions racing for the advisory lock, as four processes would.
        for (let i = 0; i < 3; i++) {
          const db = createPgDb({ connectionString: target.connectionString, logger });
          extraDbs.push(db);
          handles.push(db);
        }
      } else {
        // PGlite is one connection: four concurrent migrate calls on it must still not collide.
        handles.push(target.db, target.db, target.db);
      }
      const results = await Promise.all(handles.map((db) => migrate(db, { logger })));
      const appliedEverywhere = results.flatMap((r) => r.applied);
      expect(appliedEverywhere.filter((f) => f === '0001_init.sql')).toHaveLength(1);
      expect(new Set(results.map((r) => r.current)).size).toBe(1);
      const { rows } = await target.db.query<{ n: number }>(
        'SELECT count(*) AS n FROM boocoder_migrations WHERE version = 1',
      );
      expect(rows[0]?.n).toBe(1);
    });
  });
}

describeEachDatabase('schema 0001', (ctx) => {
  it('has the seed named constraints', async () => {
    const names = [
      'tasks_state_chk',
      'tasks_execution_path_chk',
      'pending_changes_operation_chk',
      'pending_changes_status_chk',
      'agent_sessions_backend_chk',
      'agent_sessions_status_chk',
    ];
    const { rows } = await ctx.db.query<{ conname: string }>(
      "SELECT conname FROM pg_constraint WHERE contype = 'c' AND conname = ANY($1::text[]) ORDER BY conname",
      [names],
    );
    expect(rows.map((r) => r.conname)).toEqual([...names].sort());
  });

  it('has the human_inbox view showing blocked and failed tasks', async () => {
    const { rows } = await ctx.db.query("SELECT 1 FROM pg_views WHERE viewname = 'human_inbox'");
    expect(rows).toHaveLength(1);
    const project = await ctx.db.query<{ id: string }>(
      "INSERT INTO projects (root_path, name) VALUES ('/inbox', 'inbox') RETURNING id",
    );
    const projectId = project.rows[0]?.id;
    await ctx.db.query(
      "INSERT INTO tasks (project_id, input, state) VALUES ($1, 'a', 'blocked'), ($1, 'b', 'pending'), ($1, 'c', 'failed')",
      [projectId],
    );
    const inbox = await ctx.db.query<{ input: string }>(
      'SELECT input FROM human_inbox WHERE project_id = $1 ORDER BY seq',
      [projectId],
    );
    expect(inbox.rows.map((r) => r.input)).toEqual(['a', 'c']);
  });

  it('rejects a task state outside the seed set by the named constraint', async () => {
    const project = await ctx.db.query<{ id: string }>(
      "INSERT INTO projects (root_path, name) VALUES ('/chk', 'chk') RETURNING id",
    );
    const err = await caught(
      ctx.db.query("INSERT INTO tasks (project_id, input, state) VALUES ($1, 'x', 'bogus')", [
        project.rows[0]?.id,
      ]),
    );
    expect((err as { constraint?: string }).constraint).toBe('tasks_state_chk');
  });

  it('NOTIFYs tasks_new on every task insert, seen by listen', async () => {
    const project = await ctx.db.query<{ id: string }>(
      "INSERT INTO projects (root_path, name) VALUES ('/notify', 'notify') RETURNING id",
    );
    let resolveSeen: (payload: string) => void = () => {};
    const seen = new Promise<string>((resolve) => {
      resolveSeen = resolve;
    });
    const unlisten = await ctx.db.listen('tasks_new', resolveSeen);
    try {
      await ctx.db.query("INSERT INTO tasks (project_id, input) VALUES ($1, 'wake up')", [
        project.rows[0]?.id,
      ]);
      expect(await seen).toBe('');
    } finally {
      await unlisten();
    }
  });
});
