/**
 * The PostgreSQL adapter: a pg.Pool for queries and transactions, and one shared LISTEN
 * connection (pg-listener.ts) for notifications.
 *
 * Driver errors about connecting are rewrapped as E_DATABASE with only an error code: the
 * driver's own errors can carry the connection string (an invalid URL is echoed back whole),
 * which would put a password in front of the client's model. SQL errors (constraint violations,
 * syntax) pass through unchanged so callers can match `code` and `constraint`.
 */
import pg from 'pg';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  assertNotInsideTransaction,
  assertSchemaName,
  assertTransactionOpen,
  DEFAULT_SCHEMA,
  hasParams,
  INT8_OID,
  parseInt8,
  runMarkedTransaction,
} from './adapter-common.js';
import type { Db, Queryable, QueryOptions, QueryResult } from './db.js';
import { createPgListener, errorCode, type PgListenerOptions } from './pg-listener.js';

export interface PgDbOptions {
  connectionString: string;
  logger: Logger;
  /** The schema of boocoder's tables (DEFAULT_SCHEMA unless given): each connection's search_path. */
  schema?: string;
  poolMax?: number;
  /**
   * A query not answered within this fails with E_DATABASE and its connection is dropped. Without
   * it a query on a half-open connection (a network path that silently drops packets, a server
   * host that vanished) waits forever: TCP keepalive only probes idle sockets, and an unanswered
   * write is retried by the kernel for a quarter of an hour. No boocoder statement runs for long.
   */
  queryTimeoutMs?: number;
  /** Tuning for the LISTEN connection (tests shorten these). */
  listen?: Pick<
    PgListenerOptions,
    'keepaliveMs' | 'keepaliveTimeoutMs' | 'reconnectMinMs' | 'reconnectMaxMs' | 'connectTimeoutMs'
  >;
}

/** Error codes that mean "the connection is unusable", not "the SQL failed". */
const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'EPIPE',
  '28000', // invalid_authorization_specification
  '28P01', // invalid_password
  '3D000', // invalid_catalog_name: the database does not exist
  '53300', // too_many_connections
  '57P01', // admin_shutdown (pg_terminate_backend)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
]);

export function isConnectionError(err: unknown): boolean {
  const code = errorCode(err);
  if (code !== undefined) return CONNECTION_ERROR_CODES.has(code);
  const message = err instanceof Error ? err.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout/i.test(
    message,
  );
}

/** A name for a connection failure that has no driver code (pg says these in prose). */
function describeFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  if (/Query read timeout/i.test(message)) return 'no answer within the query timeout';
  if (/timeout exceeded when trying to connect|due to connection timeout/i.test(message))
    return 'connect timeout';
  if (err instanceof TypeError) return 'invalid connection string';
  return 'connection failed';
}

/** The public form of a failure to reach the database: a code, never the URL or password. */
export function databaseUnreachable(err: unknown): BoocoderError {
  const code = errorCode(err) ?? describeFailure(err);
  // No `cause`: the original error's message and fields (TypeError.input) may hold the URL.
  return new BoocoderError('E_DATABASE', `cannot reach the database (${code}); check DATABASE_URL`, { code });
}

/** int8 as number, per pool, not via the global pg.types (which would change every pg user in the process). */
export function createPgTypes(): pg.CustomTypesConfig {
  const types = new pg.TypeOverrides();
  types.setTypeParser(INT8_OID, parseInt8);
  return types;
}

async function runOn<T>(
  client: pg.PoolClient,
  sql: string,
  params: readonly unknown[] | undefined,
  options?: QueryOptions,
): Promise<QueryResult<T>> {
  let result: pg.QueryResult | pg.QueryResult[];
  try {
    if (options?.name) {
      // Named: pg parses and plans it once per connection, then only binds and executes.
      result = await client.query({ name: options.name, text: sql, values: params ? [...params] : [] });
    } else {
      result = hasParams(params) ? await client.query(sql, [...params]) : await client.query(sql);
    }
  } catch (err) {
    throw isConnectionError(err) ? databaseUnreachable(err) : err;
  }
  // Several statements in one parameterless query return one result each: keep the last.
  const last = Array.isArray(result) ? result[result.length - 1] : result;
  return { rows: (last?.rows ?? []) as T[], rowCount: last?.rowCount ?? 0 };
}

export function createPgDb(options: PgDbOptions): Db {
  const { connectionString, logger } = options;
  const types = createPgTypes();
  const schema = assertSchemaName(options.schema ?? DEFAULT_SCHEMA);
  const pool = new pg.Pool({
    connectionString,
    // Set at connection start-up, so no statement ever runs with another search_path.
    options: `-c search_path=${schema}`,
    types,
    max: options.poolMax ?? 10,
    keepAlive: true,
    application_name: 'boocoder',
    connectionTimeoutMillis: options.listen?.connectTimeoutMs ?? 10_000,
    idleTimeoutMillis: 30_000,
    query_timeout: options.queryTimeoutMs ?? 60_000,
  });
  /**
   * Counts lost connections. A pooled connection made before the latest loss is dropped when next
   * taken from the pool: the network failure that killed one connection (a half-open path) most
   * likely killed the idle ones too, and finding that out one by one costs a query timeout each.
   */
  let losses = 0;
  const lossesWhenMade = new WeakMap<pg.PoolClient, number>();
  // An idle pooled client whose server goes away emits 'error' on the pool; unhandled, that
  // event would crash the process. The pool discards that client by itself.
  pool.on('error', (err) => {
    losses++;
    logger.warn('idle database connection failed', { code: errorCode(err) });
  });
  // pg-pool takes its 'error' listener off a client while it is checked out. A connection that dies
  // between two statements (the server crashes while a transaction awaits other work) would then
  // emit an unhandled 'error' and crash the process; instead its next statement fails as E_DATABASE.
  const lostWhileInUse = (err: Error) => {
    losses++;
    logger.warn('database connection lost while in use', { code: errorCode(err) });
  };
  const listener = createPgListener({ ...options.listen, connectionString, types, logger });
  let closed = false;

  const connect = async (): Promise<pg.PoolClient> => {
    for (;;) {
      if (closed) throw new BoocoderError('E_DATABASE', 'the database handle is closed');
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        logger.warn('cannot connect to the database', { code: errorCode(err) });
        throw databaseUnreachable(err);
      }
      const made = lossesWhenMade.get(client);
      if (made === undefined) lossesWhenMade.set(client, losses);
      if (made === undefined || made === losses) {
        client.on('error', lostWhileInUse);
        return client;
      }
      client.release(true);
    }
  };

  /** Releases a client, destroying it when it failed as a connection (its errors are BoocoderErrors). */
  const release = (client: pg.PoolClient, err: unknown) => {
    const lost = err instanceof BoocoderError;
    if (lost) losses++;
    client.removeListener('error', lostWhileInUse);
    client.release(lost ? err : undefined);
  };

  const db: Db = {
    kind: 'pg',
    schema,

    async query<T>(
      sql: string,
      params?: readonly unknown[],
      options?: QueryOptions,
    ): Promise<QueryResult<T>> {
      assertNotInsideTransaction(db, 'db.query');
      const client = await connect();
      let failure: unknown;
      try {
        return await runOn<T>(client, sql, params, options);
      } catch (err) {
        failure = err;
        throw err;
      } finally {
        release(client, failure);
      }
    },

    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      assertNotInsideTransaction(db, 'db.transaction');
      const client = await connect();
      let done = false;
      let lost: BoocoderError | undefined;
      const run = async <R>(sql: string, params?: readonly unknown[], options?: QueryOptions) => {
        try {
          return await runOn<R>(client, sql, params, options);
        } catch (err) {
          if (err instanceof BoocoderError) lost = err;
          throw err;
        }
      };
      const tx: Queryable = {
        query: <R>(sql: string, params?: readonly unknown[], options?: QueryOptions) => {
          assertTransactionOpen(done);
          return run<R>(sql, params, options);
        },
      };
      try {
        await run('BEGIN');
        const result = await runMarkedTransaction(db, () => fn(tx));
        await run('COMMIT');
        return result;
      } catch (err) {
        // On a lost connection a ROLLBACK would only wait out another query timeout; the server
        // rolls back by itself when the connection closes.
        if (!lost) {
          try {
            await client.query('ROLLBACK');
          } catch (rollbackErr) {
            // The connection is gone or wedged: make the pool destroy it rather than reuse it.
            lost = databaseUnreachable(rollbackErr);
          }
        }
        throw err;
      } finally {
        done = true;
        release(client, lost);
      }
    },

    async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
      assertNotInsideTransaction(db, 'db.listen');
      try {
        return await listener.subscribe(channel, onNotify);
      } catch (err) {
        if (err instanceof BoocoderError) throw err;
        throw databaseUnreachable(err);
      }
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await listener.close();
      await pool.end();
    },
  };
  return db;
}
