/**
 * kill -9 of a process whose dispatcher had claimed a task at its INSERT (claim at insert) and was
 * running it: the task is not lost. Once its lease expires another dispatcher's sweep hands it back
 * and that dispatcher runs it as attempt 2, exactly once.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.js';
import { createPgDb } from '../../src/db/pg.js';
import { Dispatcher } from '../../src/dispatcher/dispatcher.js';
import { silentLogger } from '../../src/log.js';
import {
  killProcess,
  type RunningProcess,
  startTsxScript,
  waitFor,
  waitForReady,
} from '../helpers/chaos-processes.js';
import { CHAOS_CLAIMS_DDL, recordingRunner } from '../helpers/chaos-recording-runner.js';
import { readTask } from '../helpers/chaos-tasks.js';
import { databaseBackends, isPostgresAvailable, type TestDatabase } from '../helpers/databases.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/claim-at-insert-process.ts', import.meta.url));

describe.skipIf(!isPostgresAvailable())(
  'a process killed with -9 after claiming a task at insert [pg]',
  () => {
    let testDb: TestDatabase;
    let first: RunningProcess | undefined;
    let secondDb: Db | undefined;
    let second: Dispatcher | undefined;

    beforeAll(async () => {
      const pg = databaseBackends().find((b) => b.name === 'pg');
      testDb = await (pg as NonNullable<typeof pg>).create();
      await testDb.db.query(CHAOS_CLAIMS_DDL);
    });

    afterAll(async () => {
      await second?.stop();
      await secondDb?.close();
      await killProcess(first);
      await testDb?.close();
    });

    it('another dispatcher runs it once after the lease expires, as its second attempt', async () => {
      const url = testDb.connectionString as string;
      first = startTsxScript(FIXTURE, {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        DATABASE_URL: url,
        CLAIM_LEASE_MS: '1500',
      });
      await waitForReady(first);
      const [, taskId, state] = /task (\S+) (\S+)\n/.exec(first.stdout()) ?? [];
      expect(state).toBe('running');
      const id = taskId as string;
      const db = testDb.db;
      await waitFor('the first attempt to start', async () => {
        const { rows } = await db.query('SELECT 1 FROM chaos_claims WHERE task_id = $1', [id]);
        return rows.length === 1;
      });
      const owner = (await readTask(db, id)).lease_owner;
      expect(owner).toMatch(new RegExp(`:${first.pid}:`));
      first.child.kill('SIGKILL');
      await first.exited;

      secondDb = createPgDb({ connectionString: url, logger: silentLogger, poolMax: 3 });
      second = new Dispatcher({
        db: secondDb,
        logger: silentLogger,
        runTask: recordingRunner(secondDb),
        concurrency: 2,
        pollMs: 200,
        leaseMs: 30_000,
        shutdownGraceMs: 1_000,
      });
      await second.start();
      await waitFor(
        'the task to complete',
        async () => (await readTask(db, id)).state === 'completed',
        30_000,
      );
      expect(await readTask(db, id)).toMatchObject({ state: 'completed', attempts: 2, lease_owner: null });
      const { rows } = await db.query<{ attempt: number; owner: string; overlapping: boolean }>(
        'SELECT attempt, owner, overlapping FROM chaos_claims WHERE task_id = $1 ORDER BY claimed_at',
        [id],
      );
      expect(rows).toEqual([
        { attempt: 1, owner, overlapping: false },
        { attempt: 2, owner: second.owner, overlapping: false },
      ]);
    });
  },
);
