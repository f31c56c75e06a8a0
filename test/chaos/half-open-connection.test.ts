/**
 * A half-open network between boocoder's pg adapter and PostgreSQL: a proxy that silently drops
 * every byte and closes nothing, so no TCP error ever arrives. The LISTEN connection must notice by
 * its keepalive ping, keep trying to reconnect, LISTEN again once traffic passes, and a task queued
 * afterwards must be claimed through its NOTIFY (the fallback poll is set far beyond the test).
 * A query on a dead pooled connection must fail with E_DATABASE rather than wait forever.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.js';
import { createPgDb } from '../../src/db/pg.js';
import { upsertProject } from '../../src/db/projects.js';
import { Dispatcher } from '../../src/dispatcher/dispatcher.js';
import { isBoocoderError } from '../../src/errors.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { waitFor } from '../helpers/chaos-processes.js';
import { CHAOS_CLAIMS_DDL, recordingRunner } from '../helpers/chaos-recording-runner.js';
import { insertNoopTasks, insertSessions } from '../helpers/chaos-tasks.js';
import { startTcpProxy, type TcpProxy } from '../helpers/chaos-tcp-proxy.js';
import { databaseBackends, isPostgresAvailable, type TestDatabase } from '../helpers/databases.js';

const LISTEN_BACKENDS = `SELECT pid FROM pg_stat_activity
  WHERE datname = current_database() AND application_name = 'boocoder-listen'`;

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe.skipIf(!isPostgresAvailable())('a half-open connection to PostgreSQL [pg]', () => {
  let testDb: TestDatabase;
  let proxy: TcpProxy;
  let proxiedUrl: string;
  let dispatcherDb: Db;
  let dispatcher: Dispatcher;
  let project: string;
  let sessions: string[];
  const logLines: string[] = [];
  const logged = (msg: string) => logLines.filter((l) => JSON.parse(l).msg === msg).length;

  beforeAll(async () => {
    const pg = databaseBackends().find((b) => b.name === 'pg');
    testDb = await (pg as NonNullable<typeof pg>).create();
    await testDb.db.query(CHAOS_CLAIMS_DDL);
    project = (await upsertProject(testDb.db, '/chaos/half-open', 'half-open')).id;
    sessions = await insertSessions(testDb.db, project, 4);
    const url = new URL(testDb.connectionString as string);
    proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.host = `127.0.0.1:${proxy.port}`;
    proxiedUrl = url.toString();
    dispatcherDb = createPgDb({
      connectionString: proxiedUrl,
      logger: createLogger('debug', {}, (line) => logLines.push(line)),
      queryTimeoutMs: 1500,
      listen: {
        keepaliveMs: 200,
        keepaliveTimeoutMs: 1000,
        reconnectMinMs: 50,
        reconnectMaxMs: 500,
        connectTimeoutMs: 1500,
      },
    });
    // Poll and lease far beyond the test: no timer of the dispatcher's fires, so only NOTIFY wakes
    // it, and only the test's own statements use the pool while traffic is dropped.
    dispatcher = new Dispatcher({
      db: dispatcherDb,
      logger: silentLogger,
      runTask: recordingRunner(dispatcherDb),
      concurrency: 2,
      pollMs: 600_000,
      leaseMs: 600_000,
      shutdownGraceMs: 5_000,
    });
    await dispatcher.start();
  });

  afterAll(async () => {
    proxy?.passTraffic();
    await dispatcher?.stop();
    await dispatcherDb?.close();
    await proxy?.close();
    await testDb?.close();
  });

  const completed = async (label: string) => {
    const { rows } = await testDb.db.query<{ state: string }>('SELECT state FROM tasks WHERE input LIKE $1', [
      `${label} %`,
    ]);
    return rows.length > 0 && rows.every((r) => r.state === 'completed');
  };

  const listenBackends = async () =>
    (await testDb.db.query<{ pid: number }>(LISTEN_BACKENDS)).rows.map((r) => r.pid);

  it('notices the silent LISTEN connection, LISTENs again once traffic passes, and claims by NOTIFY', async () => {
    await insertNoopTasks(testDb.db, project, sessions.slice(0, 1), 1, 'before');
    await waitFor('the task queued before the drop to be claimed through NOTIFY', () => completed('before'));
    const [silenced] = await listenBackends();
    expect(silenced).toBeDefined();

    proxy.dropTraffic();
    await waitFor('the keepalive ping to give the LISTEN connection up', () =>
      logged('notification connection lost; reconnecting'),
    );
    // Reconnecting through the black hole times out, and the listener keeps trying.
    await waitFor('a reconnect attempt to fail', () => logged('notification reconnect failed; retrying'));
    // Its NOTIFY goes nowhere: nobody listens.
    await insertNoopTasks(testDb.db, project, sessions.slice(1, 2), 1, 'during');
    expect(await completed('during')).toBe(false);

    proxy.passTraffic();
    await waitFor('the task inserted while the network was down to be claimed', () => completed('during'));
    // The silenced backend is gone (its client hung up) and one new connection LISTENs.
    const listening = await waitFor('one LISTEN backend, a new one', async () => {
      const pids = await listenBackends();
      return pids.length === 1 && pids[0] !== silenced ? pids : undefined;
    });
    expect(listening).toHaveLength(1);
    await waitFor('the dispatcher to be idle', () => dispatcher.activeCount === 0);

    await insertNoopTasks(testDb.db, project, sessions.slice(2, 3), 1, 'after');
    await waitFor('a task inserted after the reconnect to be claimed through NOTIFY', () =>
      completed('after'),
    );
    const { rows } = await testDb.db.query<{ input: string; attempt: number; overlapping: boolean }>(
      `SELECT t.input, c.attempt, c.overlapping FROM chaos_claims c JOIN tasks t ON t.id = c.task_id
        ORDER BY c.claimed_at`,
    );
    expect(rows).toEqual([
      { input: 'before 0', attempt: 1, overlapping: false },
      { input: 'during 0', attempt: 1, overlapping: false },
      { input: 'after 0', attempt: 1, overlapping: false },
    ]);
  });

  it('fails a query on a dead pooled connection with E_DATABASE instead of hanging, then recovers', async () => {
    // One idle pooled connection, made while traffic passes.
    expect((await dispatcherDb.query<{ v: number }>('SELECT 1 AS v')).rows).toEqual([{ v: 1 }]);
    proxy.dropTraffic();

    const deadPooled = await rejection(dispatcherDb.query('SELECT 1'));
    expect(isBoocoderError(deadPooled, 'E_DATABASE')).toBe(true);
    expect(deadPooled.message).toBe(
      'cannot reach the database (no answer within the query timeout); check DATABASE_URL',
    );
    // A new connection through the black hole gets no answer either: the connect timeout ends it.
    const newConnection = await rejection(dispatcherDb.transaction((tx) => tx.query('SELECT 1')));
    expect(isBoocoderError(newConnection, 'E_DATABASE')).toBe(true);
    expect(newConnection.message).toBe('cannot reach the database (connect timeout); check DATABASE_URL');
    for (const err of [deadPooled, newConnection]) expect(err.message).not.toContain(String(proxy.port));

    // The connections idle since before the loss are dropped unused: the next query gets a new one.
    proxy.passTraffic();
    expect((await dispatcherDb.query<{ v: number }>('SELECT 1 AS v')).rows).toEqual([{ v: 1 }]);
  });
});
