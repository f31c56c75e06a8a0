import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.js';
import { openDatabase } from '../../src/db/open.js';
import { createPgDb } from '../../src/db/pg.js';
import { isBoocoderError } from '../../src/errors.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { waitFor } from '../helpers/chaos-processes.js';
import { startTcpProxy, type TcpProxy } from '../helpers/chaos-tcp-proxy.js';
import { databaseBackends, type TestDatabase } from '../helpers/databases.js';

const pgBackend = databaseBackends().find((b) => b.name === 'pg');

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('pg connection errors never show the connection string', () => {
  const password = 's3cret-Pa55word';
  const url = `postgres://boocoder:${password}@127.0.0.1:1/nodb`;
  const handles: Db[] = [];
  afterEach(async () => {
    for (const db of handles.splice(0)) await db.close();
  });

  function leaks(err: Error): boolean {
    const text = `${err.message} ${JSON.stringify((err as { details?: unknown }).details ?? {})}`;
    return text.includes(password) || text.includes('127.0.0.1:1') || text.includes('boocoder:');
  }

  it('wraps a refused connection on query, transaction and listen as E_DATABASE with only a code', async () => {
    const db = createPgDb({ connectionString: url, logger: silentLogger });
    handles.push(db);
    for (const err of [
      await rejection(db.query('SELECT 1')),
      await rejection(db.transaction(async (tx) => tx.query('SELECT 1'))),
      await rejection(db.listen('some_channel', () => {})),
    ]) {
      expect(isBoocoderError(err, 'E_DATABASE')).toBe(true);
      expect(err.message).toBe('cannot reach the database (ECONNREFUSED); check DATABASE_URL');
      expect(leaks(err)).toBe(false);
      expect(err.cause).toBeUndefined();
    }
  });

  it('does the same from openDatabase, and for a malformed URL', async () => {
    const refused = await rejection(
      openDatabase({ databaseUrl: url, home: '/nonexistent', logger: silentLogger }),
    );
    expect(isBoocoderError(refused, 'E_DATABASE')).toBe(true);
    expect(leaks(refused)).toBe(false);
    const malformed = await rejection(
      openDatabase({
        databaseUrl: `postgres://boocoder:${password}@[::1`,
        home: '/nonexistent',
        logger: silentLogger,
      }),
    );
    expect(isBoocoderError(malformed, 'E_DATABASE')).toBe(true);
    expect(malformed.message).not.toContain(password);
  });
});

describe.runIf(pgBackend !== undefined)('pg LISTEN connection', () => {
  let target: TestDatabase;
  const handles: Db[] = [];
  let proxy: TcpProxy | undefined;

  beforeAll(async () => {
    target = await (pgBackend as NonNullable<typeof pgBackend>).create();
  }, 60_000);
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    for (const db of handles.splice(0)) await db.close();
  });
  afterAll(async () => {
    await target?.close();
  });

  function open(connectionString: string, lines?: string[]): Db {
    const logger = lines ? createLogger('debug', {}, (line) => lines.push(line)) : silentLogger;
    const db = createPgDb({
      connectionString,
      logger,
      listen: { reconnectMinMs: 20, reconnectMaxMs: 200, keepaliveMs: 100, keepaliveTimeoutMs: 300 },
    });
    handles.push(db);
    return db;
  }

  /** Kills the backends of one application_name, from a connection of its own that is not among them. */
  async function terminate(applicationName: string): Promise<number> {
    const admin = new pg.Client({
      connectionString: target.connectionString,
      application_name: 'test-admin',
    });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ n: string }>(
        `SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
          WHERE application_name = $1 AND datname = current_database()`,
        [applicationName],
      );
      return Number(rows[0]?.n ?? 0);
    } finally {
      await admin.end();
    }
  }

  it('reconnects after pg_terminate_backend, wakes subscribers with "", and LISTENs again', async () => {
    const lines: string[] = [];
    const db = open(target.connectionString as string, lines);
    const payloads: string[] = [];
    const others: string[] = [];
    await db.listen('wake_chan', (p) => payloads.push(p));
    await db.listen('other_wake_chan', (p) => others.push(p));
    expect(await terminate('boocoder-listen')).toBe(1);
    await expect.poll(() => payloads, { timeout: 10_000 }).toEqual(['']);
    expect(others).toEqual(['']);
    await target.db.query("SELECT pg_notify('wake_chan', 'after-reconnect')");
    await expect.poll(() => payloads, { timeout: 10_000 }).toEqual(['', 'after-reconnect']);
    expect(lines.some((l) => l.includes('notification connection lost'))).toBe(true);
  });

  it('detects a half-open LISTEN connection by its keepalive ping and reconnects', async () => {
    const url = new URL(target.connectionString as string);
    proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
    url.host = `127.0.0.1:${proxy.port}`;
    const lines: string[] = [];
    const db = open(url.toString(), lines);
    const payloads: string[] = [];
    await db.listen('frozen_chan', (p) => payloads.push(p));
    proxy.dropTraffic();
    await expect
      .poll(() => lines.some((l) => l.includes('notification connection lost')), { timeout: 10_000 })
      .toBe(true);
    proxy.passTraffic();
    await expect.poll(() => payloads, { timeout: 10_000 }).toEqual(['']);
    await target.db.query("SELECT pg_notify('frozen_chan', 'through-new-connection')");
    await expect.poll(() => payloads, { timeout: 10_000 }).toEqual(['', 'through-new-connection']);
  });

  it('logs, rather than throws, when an idle pooled connection is killed', async () => {
    const lines: string[] = [];
    const db = open(target.connectionString as string, lines);
    await db.query('SELECT 1'); // leaves one idle client in the pool
    expect(await terminate('boocoder')).toBeGreaterThanOrEqual(1);
    await expect.poll(() => lines.some((l) => l.includes('idle database connection failed'))).toBe(true);
    expect((await db.query<{ v: number }>('SELECT 1 AS v')).rows).toEqual([{ v: 1 }]);
  });

  it('fails the statements of a connection killed while checked out with E_DATABASE, without crashing', async () => {
    const lines: string[] = [];
    const db = open(target.connectionString as string, lines);
    const failed = await rejection(
      db.transaction(async (tx) => {
        const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        // Killed between two statements: the client has no query running when its socket closes.
        await target.db.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
        await expect
          .poll(() => lines.some((l) => l.includes('database connection lost while in use')))
          .toBe(true);
        await tx.query('SELECT 1');
      }),
    );
    expect(isBoocoderError(failed, 'E_DATABASE')).toBe(true);
    // Killed with a statement running: that statement fails.
    const inFlight = rejection(db.query('SELECT pg_sleep(30)'));
    const sleepers = `SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND query = 'SELECT pg_sleep(30)' AND state = 'active'`;
    const sleeper = await waitFor('the statement to run', async () => {
      return (await target.db.query<{ pid: number }>(sleepers)).rows[0];
    });
    await target.db.query('SELECT pg_terminate_backend($1)', [sleeper.pid]);
    expect(isBoocoderError(await inFlight, 'E_DATABASE')).toBe(true);
    expect((await db.query<{ v: number }>('SELECT 1 AS v')).rows).toEqual([{ v: 1 }]);
  });

  it('keeps int8 parsing per pool, leaving the global pg types alone', () => {
    expect(pg.types.getTypeParser(20, 'text')('12')).toBe('12');
  });
});
