/**
 * What the pg and PGlite adapters share, so both behave the same: type conventions, channel-name
 * validation, and the guard against using the outer handle inside a transaction.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { BoocoderError } from '../errors.js';

/** Postgres type OIDs whose parsing both adapters pin down. */
export const INT8_OID = 20;

/**
 * int8 (BIGINT, count(*)) comes back as a JS number on both adapters. pg's default is a string,
 * PGlite's is a number that silently turns into a bigint above 2^53: one convention avoids code
 * that works on one backend and not the other. boocoder's BIGINT columns (seq, token counts) stay
 * far below 2^53; a larger value loses precision rather than changing type.
 */
export function parseInt8(text: string): number {
  return Number(text);
}

// LISTEN cannot take a bind parameter, so the channel is spliced into SQL: only plain identifiers
// pass, which blocks SQL injection through a channel name.
const CHANNEL_RE = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertChannelName(channel: string): void {
  if (!CHANNEL_RE.test(channel)) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `invalid notification channel name ${JSON.stringify(channel.slice(0, 80))}; use lowercase letters, digits and _`,
    );
  }
}

/** The schema boocoder keeps its tables, views, functions and migrations table in. */
export const DEFAULT_SCHEMA = 'boocoder';

// The schema name goes into a connection's startup options and into DDL: identifiers only, which
// blocks injection through the configured name.
const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertSchemaName(schema: string): string {
  if (!SCHEMA_RE.test(schema)) {
    throw new BoocoderError(
      'E_CONFIG',
      `invalid database schema name ${JSON.stringify(schema.slice(0, 80))}; use lowercase letters, digits and _`,
    );
  }
  return schema;
}

/** A parameterless query goes over the simple protocol on both adapters, so it may hold several statements. */
export function hasParams(params: readonly unknown[] | undefined): params is readonly unknown[] {
  return params !== undefined && params.length > 0;
}

interface TransactionMark {
  readonly owner: object;
  readonly parent: TransactionMark | undefined;
  active: boolean;
}

const currentTransaction = new AsyncLocalStorage<TransactionMark>();

/**
 * Runs fn marked as "inside a transaction of `owner`". While the mark is active, the outer handle
 * of the same Db refuses to run (assertNotInsideTransaction): on PGlite, awaiting it would wait for
 * the transaction that is waiting for it, a deadlock that never ends; on pg it would silently run
 * outside the transaction and can block on the transaction's own row locks. Failing fast on both
 * keeps code that passes on one backend correct on the other. Work started elsewhere (another
 * request, the dispatcher loop) is not marked and simply queues behind the transaction.
 */
export async function runMarkedTransaction<T>(owner: object, fn: () => Promise<T>): Promise<T> {
  const mark: TransactionMark = { owner, parent: currentTransaction.getStore(), active: true };
  try {
    return await currentTransaction.run(mark, fn);
  } finally {
    // Callbacks the transaction started (timers, un-awaited promises) inherit the mark; once the
    // transaction is over they may use the outer handle again.
    mark.active = false;
  }
}

export function assertNotInsideTransaction(owner: object, what: string): void {
  let mark = currentTransaction.getStore();
  while (mark && !(mark.active && mark.owner === owner)) mark = mark.parent;
  if (mark) {
    throw new BoocoderError(
      'E_INTERNAL',
      `${what} was called on the outer database handle inside db.transaction(); use the tx handle passed to the callback`,
    );
  }
}

/** A tx handle must not outlive its transaction: a late query would run outside it, or on a pooled client someone else now owns. */
export function assertTransactionOpen(done: boolean): void {
  if (done)
    throw new BoocoderError('E_INTERNAL', 'a transaction handle was used after its transaction ended');
}
