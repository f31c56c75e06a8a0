/**
 * The embedded adapter: PGlite (Postgres compiled to WASM) in this process, for a single-user
 * setup with no server to install.
 *
 * PGlite is one connection that runs one query at a time. Queries from independent callers queue
 * inside PGlite; during `transaction(fn)` they wait until it commits. Inside fn only the `tx`
 * handle may be used: awaiting the outer handle there would wait for the transaction that waits
 * for it, forever. The outer handle detects that case and throws instead of hanging.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { PGlite, type Results, type Transaction } from '@electric-sql/pglite';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  assertChannelName,
  assertNotInsideTransaction,
  assertSchemaName,
  assertTransactionOpen,
  DEFAULT_SCHEMA,
  hasParams,
  INT8_OID,
  parseInt8,
  runMarkedTransaction,
} from './adapter-common.js';
import { acquireDataDirLock, type DataDirLock } from './data-dir-lock.js';
import type { Db, Queryable, QueryResult } from './db.js';

/** Pass as dataDir for a throwaway in-memory database (tests). */
export const IN_MEMORY = 'memory';

/**
 * Every instance open in this process, with its data dir. It lives on a global symbol so the test
 * suite's leak guard (test/helpers/chaos-leak-databases.ts) can find instances a test left open
 * without loading PGlite into every test file.
 */
const OPEN_INSTANCES = Symbol.for('boocoder.pglite.openInstances');
const globalSlots = globalThis as { [OPEN_INSTANCES]?: Map<Db, string> };
globalSlots[OPEN_INSTANCES] ??= new Map<Db, string>();
const openInstances = globalSlots[OPEN_INSTANCES];

export interface PgliteDbOptions {
  /** A directory (created 0700) or IN_MEMORY. */
  dataDir: string;
  logger: Logger;
  /** The schema of boocoder's tables (DEFAULT_SCHEMA unless given). */
  schema?: string;
}

type PgliteRunner = Pick<Transaction, 'query' | 'exec'>;

async function runOn<T>(
  runner: PgliteRunner,
  sql: string,
  params: readonly unknown[] | undefined,
): Promise<QueryResult<T>> {
  if (hasParams(params)) return normalise(await runner.query<T>(sql, [...params]));
  // The simple protocol, as pg uses for a parameterless query: several statements may run at once.
  const results = await runner.exec(sql);
  const last = results[results.length - 1];
  return last ? normalise(last as Results<T>) : { rows: [], rowCount: 0 };
}

function normalise<T>(result: Results<T>): QueryResult<T> {
  // rowCount is the command tag's count (as in pg); utility statements (CREATE ...) have none.
  return { rows: result.rows, rowCount: result.rowCount ?? 0 };
}

export async function openPgliteDb(options: PgliteDbOptions): Promise<Db> {
  const { dataDir, logger } = options;
  const inMemory = dataDir === IN_MEMORY;
  let lock: DataDirLock | undefined;
  if (!inMemory) {
    // Task inputs and diffs live here: readable by this user only.
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    chmodSync(dataDir, 0o700);
    // Before PGlite touches the directory: a second concurrent open corrupts it silently.
    lock = acquireDataDirLock(dataDir);
  }
  let pglite: PGlite;
  try {
    pglite = await PGlite.create({
      ...(inMemory ? {} : { dataDir }),
      parsers: { [INT8_OID]: (text: string) => parseInt8(text) },
    });
  } catch (err) {
    lock?.release();
    logger.error('cannot open the embedded database', { dataDir, err });
    throw new BoocoderError(
      'E_DATABASE',
      'cannot open the embedded database; the server log has the details',
      {},
      { cause: err },
    );
  }
  const schema = assertSchemaName(options.schema ?? DEFAULT_SCHEMA);
  // PGlite is one connection: its search_path, set once here, holds for every statement.
  await pglite.exec(`CREATE SCHEMA IF NOT EXISTS ${schema}; SET search_path TO ${schema}`);
  const db = createPgliteAdapter(pglite, lock, logger, schema);
  openInstances.set(db, dataDir);
  return db;
}

function createPgliteAdapter(
  pglite: PGlite,
  lock: DataDirLock | undefined,
  logger: Logger,
  schema: string,
): Db {
  let closed = false;
  const db: Db = {
    kind: 'pglite',
    schema,

    async query<T>(sql: string, params?: readonly unknown[]): Promise<QueryResult<T>> {
      assertNotInsideTransaction(db, 'db.query');
      return runOn<T>(pglite, sql, params);
    },

    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      assertNotInsideTransaction(db, 'db.transaction');
      return pglite.transaction(async (ptx) => {
        let done = false;
        const tx: Queryable = {
          query: <R>(sql: string, params?: readonly unknown[]) => {
            assertTransactionOpen(done);
            return runOn<R>(ptx, sql, params);
          },
        };
        try {
          return await runMarkedTransaction(db, () => fn(tx));
        } finally {
          done = true;
        }
      });
    },

    async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
      assertChannelName(channel);
      assertNotInsideTransaction(db, 'db.listen');
      const safeNotify = (payload: string) => {
        try {
          onNotify(payload);
        } catch (err) {
          logger.error('notification subscriber threw', { channel, err });
        }
      };
      const unlisten = await pglite.listen(channel, safeNotify);
      let active = true;
      return async () => {
        if (!active || closed) return;
        assertNotInsideTransaction(db, 'unlisten');
        active = false;
        await unlisten();
      };
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      openInstances.delete(db);
      try {
        await pglite.close();
      } finally {
        lock?.release();
      }
    },
  };
  return db;
}
