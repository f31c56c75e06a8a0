/**
 * Migration 0007: one name per execution path. The rows written before it are remapped (opencode
 * serve runs stored as `native` become `opencode_server`, 0005's `headless` sessions take their
 * path's name) and every seed value stays valid.
 */
import { copyFileSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.js';
import { defaultMigrationsDir, migrate } from '../../src/db/migrate.js';
import { silentLogger as logger } from '../../src/log.js';
import { databaseBackends, type TestDatabase } from '../helpers/databases.js';

/** The package's migrations before 0007. */
function migrationsBefore0007(): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'boocoder-sql-')));
  const source = defaultMigrationsDir();
  for (const file of readdirSync(source))
    if (file < '0007') copyFileSync(join(source, file), join(dir, file));
  return dir;
}

async function insertRows(db: Db): Promise<Record<string, string>> {
  const { rows: p } = await db.query<{ id: string }>(
    "INSERT INTO projects (root_path, name) VALUES ('/srv/demo', 'demo') RETURNING id",
  );
  const projectId = p[0]?.id as string;
  const { rows: s } = await db.query<{ id: string }>(
    'INSERT INTO sessions (project_id) VALUES ($1) RETURNING id',
    [projectId],
  );
  const sessionId = s[0]?.id as string;
  const ids: Record<string, string> = {};
  for (const [name, agent, path] of [
    ['serve', 'opencode', 'native'],
    ['codex', 'codex', 'pty'],
    ['qwen', 'qwen', 'pty'],
    ['acp', 'gemini', 'acp'],
    ['old', 'opencode', null],
  ] as const) {
    const { rows: c } = await db.query<{ id: string }>(
      'INSERT INTO chats (session_id) VALUES ($1) RETURNING id',
      [sessionId],
    );
    const chatId = c[0]?.id as string;
    const { rows: t } = await db.query<{ id: string }>(
      `INSERT INTO tasks (project_id, session_id, chat_id, input, agent, execution_path, state)
       VALUES ($1, $2, $3, 'x', $4, $5, 'completed') RETURNING id`,
      [projectId, sessionId, chatId, agent, path],
    );
    ids[name] = t[0]?.id as string;
    const backend = { native: 'opencode_server', pty: 'headless', acp: 'acp_warm' }[path ?? 'acp'];
    await db.query(
      'INSERT INTO agent_sessions (chat_id, session_id, agent, backend) VALUES ($1, $2, $3, $4)',
      [chatId, sessionId, agent, backend],
    );
  }
  return ids;
}

for (const backend of databaseBackends()) {
  describe(`migration 0007 execution paths [${backend.name}]`, () => {
    const opened: TestDatabase[] = [];
    const dirs: string[] = [];
    afterEach(async () => {
      for (const t of opened.splice(0)) await t.close();
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    });

    it('remaps the rows written before it and keeps every seed value valid', async () => {
      const t = await backend.create({ migrated: false });
      opened.push(t);
      const dir = migrationsBefore0007();
      dirs.push(dir);
      await migrate(t.db, { dir, logger });
      const ids = await insertRows(t.db);
      const result = await migrate(t.db, { logger });
      expect(result.applied[0]).toBe('0007_execution_paths.sql');

      const { rows: tasks } = await t.db.query<{ id: string; execution_path: string | null }>(
        'SELECT id, execution_path FROM tasks',
      );
      const pathOf = (name: string) => tasks.find((r) => r.id === ids[name])?.execution_path;
      expect(pathOf('serve')).toBe('opencode_server');
      expect(pathOf('codex')).toBe('pty');
      expect(pathOf('qwen')).toBe('qwen');
      expect(pathOf('acp')).toBe('acp');
      expect(pathOf('old')).toBeNull();
      const { rows: sessions } = await t.db.query<{ agent: string; backend: string }>(
        'SELECT agent, backend FROM agent_sessions ORDER BY agent, backend',
      );
      expect(sessions.map((r) => [r.agent, r.backend])).toEqual([
        ['codex', 'pty'],
        ['gemini', 'acp_warm'],
        ['opencode', 'acp_warm'],
        ['opencode', 'opencode_server'],
        ['qwen', 'qwen'],
      ]);

      // The seed's values (and the new one) are all accepted; 0005's `headless` no longer is.
      const { rows: p } = await t.db.query<{ project_id: string }>('SELECT project_id FROM tasks LIMIT 1');
      for (const path of ['native', 'acp', 'pty', 'qwen', 'opencode_server']) {
        await t.db.query("INSERT INTO tasks (project_id, input, execution_path) VALUES ($1, 'y', $2)", [
          p[0]?.project_id,
          path,
        ]);
      }
      await expect(
        t.db.query("INSERT INTO tasks (project_id, input, execution_path) VALUES ($1, 'y', 'serve')", [
          p[0]?.project_id,
        ]),
      ).rejects.toThrow(/tasks_execution_path_chk/);
      await expect(t.db.query("UPDATE agent_sessions SET backend = 'headless'")).rejects.toThrow(
        /agent_sessions_backend_chk/,
      );
    });
  });
}
