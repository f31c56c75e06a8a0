/**
 * The database interface every module uses, with two adapters: `pg` (real PostgreSQL) and PGlite
 * (embedded, in-process). The same SQL runs on both.
 */
export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

export interface QueryOptions {
  /**
   * Runs the statement as a named prepared statement on pg (parsed and planned once per pooled
   * connection rather than on every call): for the dispatcher's hot queries. One name must always
   * go with the same SQL text. PGlite ignores it.
   */
  name?: string;
}

export interface Queryable {
  query<T = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<QueryResult<T>>;
}

export interface Db extends Queryable {
  readonly kind: 'pg' | 'pglite';
  /**
   * The schema boocoder's tables live in (`boocoder` unless configured): every connection's
   * search_path, so boocoder's SQL stays unqualified and can share a database with anything.
   */
  readonly schema: string;
  /**
   * Runs fn in one transaction. Only `tx` may be used inside fn: on PGlite the outer handle would
   * wait for the transaction to finish and deadlock forever.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Subscribes to a NOTIFY channel; the returned function unsubscribes. Notifications are hints only. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
