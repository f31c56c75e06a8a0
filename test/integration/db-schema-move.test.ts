import { afterEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.js';
import { migrate } from '../../src/db/migrate.js';
import { createPgDb } from '../../src/db/pg.js';
import { createdObjects } from '../../src/db/schema-move.js';
import { silentLogger } from '../../src/log.js';
import { databaseBackends, type TestDatabase } from '../helpers/databases.js';

const logger = silentLogger;
const pgBackend = databaseBackends().find((b) => b.name === 'pg');

describe('createdObjects', () => {
  it('names what a migration creates, whatever the spelling', () => {
    expect(
      createdObjects(
        'CREATE TABLE projects (x int);\ncreate table if not exists Public.foo ();\nCREATE OR REPLACE FUNCTION notify_x() RETURNS trigger AS $$ $$;\nCREATE VIEW human_inbox AS SELECT 1; CREATE INDEX i ON projects (x); CREATE TRIGGER t AFTER INSERT ON projects',
      ),
    ).toEqual([
      { kind: 'TABLE', name: 'projects' },
      { kind: 'TABLE', name: 'foo' },
      { kind: 'FUNCTION', name: 'notify_x' },
      { kind: 'VIEW', name: 'human_inbox' },
    ]);
  });
});

describe.skipIf(!pgBackend)('an install from before the boocoder schema [pg]', () => {
  const opened: TestDatabase[] = [];
  const handles: Db[] = [];
  afterEach(async () => {
    for (const h of handles.splice(0)) await h.close();
    for (const t of opened.splice(0)) await t.close();
  });

  it('moves its tables, view and trigger function out of public with every row, and leaves others alone', async () => {
    const target = await (pgBackend as NonNullable<typeof pgBackend>).create({ migrated: false });
    opened.push(target);
    const url = target.connectionString as string;
    const plain = new URL(url);
    plain.searchParams.delete('options'); // the test URL's own search_path would win over `schema`
    // The old layout: the same migrations, run in public, as boocoder did before its own schema.
    const old = createPgDb({ connectionString: plain.toString(), logger, schema: 'public' });
    handles.push(old);
    await migrate(old, { logger });
    await old.query(`INSERT INTO projects (root_path, name) VALUES ('/legacy/repo', 'repo')`);
    await old.query('CREATE TABLE someone_elses (x INT); INSERT INTO someone_elses VALUES (1)');
    const before = await old.query<{ n: number }>('SELECT count(*) AS n FROM boocoder_migrations');

    const db = createPgDb({ connectionString: url, logger });
    handles.push(db);
    const result = await migrate(db, { logger });
    expect(result.applied).toEqual([]);
    expect((await db.query<{ n: number }>('SELECT count(*) AS n FROM boocoder_migrations')).rows).toEqual(
      before.rows,
    );
    expect(
      (await db.query<{ path: string }>('SELECT root_path AS path FROM boocoder.projects')).rows,
    ).toEqual([{ path: '/legacy/repo' }]);
    const left = await db.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r','v') ORDER BY 1`,
    );
    expect(left.rows).toEqual([{ name: 'someone_elses' }]);
    const functions = await db.query<{ schema: string }>(
      `SELECT pronamespace::regnamespace::text AS schema FROM pg_proc WHERE proname = 'notify_tasks_new'`,
    );
    expect(functions.rows).toEqual([{ schema: 'boocoder' }]);
    // The trigger came along with its table.
    const triggers = await db.query<{ tbl: string }>(
      `SELECT tgrelid::regclass::text AS tbl FROM pg_trigger WHERE tgname = 'tasks_notify_new'`,
    );
    expect(triggers.rows).toEqual([{ tbl: 'tasks' }]);
  });
});
