import { expect, it } from 'vitest';
import { isBoocoderError } from '../../src/errors.js';
import { describeEachDatabase } from '../helpers/databases.js';

describeEachDatabase('Db adapter', (ctx) => {
  it('returns int8 as number, timestamptz as Date and jsonb parsed, identically on both backends', async () => {
    const { rows } = await ctx.db.query<{ big: unknown; n: unknown; at: unknown; doc: unknown }>(
      `SELECT 9007199254740991::int8 AS big, count(*) AS n, '2024-05-06T07:08:09.123Z'::timestamptz AS at,
              '{"a":[1,{"b":null}]}'::jsonb AS doc FROM (VALUES (1), (2)) v(x)`,
    );
    expect(rows[0]).toEqual({
      big: 9007199254740991,
      n: 2,
      at: new Date('2024-05-06T07:08:09.123Z'),
      doc: { a: [1, { b: null }] },
    });
  });

  it('reports rowCount for writes and reads', async () => {
    await ctx.db.query('CREATE TABLE rc_test (x INT)');
    expect((await ctx.db.query('INSERT INTO rc_test VALUES (1), (2), (3)')).rowCount).toBe(3);
    expect((await ctx.db.query('UPDATE rc_test SET x = x + 1 WHERE x > $1', [1])).rowCount).toBe(2);
    expect((await ctx.db.query('SELECT * FROM rc_test')).rowCount).toBe(3);
    expect((await ctx.db.query('CREATE TABLE rc_test2 (x INT)')).rowCount).toBe(0);
  });

  it('runs a parameterless query with several statements and returns the last result', async () => {
    const result = await ctx.db.query<{ v: number }>('CREATE TEMP TABLE multi (v INT); SELECT 7 AS v');
    expect(result.rows).toEqual([{ v: 7 }]);
  });

  it('commits a transaction and returns its value', async () => {
    await ctx.db.query('CREATE TABLE tx_commit (x INT)');
    const value = await ctx.db.transaction(async (tx) => {
      await tx.query('INSERT INTO tx_commit VALUES ($1)', [1]);
      return (await tx.query<{ n: number }>('SELECT count(*) AS n FROM tx_commit')).rows[0]?.n;
    });
    expect(value).toBe(1);
    expect((await ctx.db.query('SELECT * FROM tx_commit')).rowCount).toBe(1);
  });

  it('rolls a transaction back when fn throws, and rethrows', async () => {
    await ctx.db.query('CREATE TABLE tx_rollback (x INT)');
    await expect(
      ctx.db.transaction(async (tx) => {
        await tx.query('INSERT INTO tx_rollback VALUES (1)');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await ctx.db.query('SELECT * FROM tx_rollback')).rowCount).toBe(0);
  });

  it('passes SQL errors through with their code and constraint', async () => {
    await ctx.db.query('CREATE TABLE uniq_test (x INT CONSTRAINT uniq_test_x_key UNIQUE)');
    await ctx.db.query('INSERT INTO uniq_test VALUES (1)');
    const err = await ctx.db.query('INSERT INTO uniq_test VALUES (1)').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: '23505', constraint: 'uniq_test_x_key' });
  });

  it('makes the outer handle throw inside a transaction instead of deadlocking', async () => {
    const err = await ctx.db
      .transaction(async () => {
        await ctx.db.query('SELECT 1');
      })
      .catch((e: unknown) => e);
    expect(isBoocoderError(err)).toBe(true);
    expect((err as Error).message).toContain('use the tx handle');
    // The database is still usable afterwards.
    expect((await ctx.db.query<{ v: number }>('SELECT 1 AS v')).rows).toEqual([{ v: 1 }]);
  });

  it('queues an outer query from elsewhere behind a running transaction', async () => {
    await ctx.db.query('CREATE TABLE tx_queue (x INT)');
    let releaseTx: () => void = () => {};
    const txMayFinish = new Promise<void>((resolve) => {
      releaseTx = resolve;
    });
    let insertedInTx: () => void = () => {};
    const inserted = new Promise<void>((resolve) => {
      insertedInTx = resolve;
    });
    const txDone = ctx.db.transaction(async (tx) => {
      await tx.query('INSERT INTO tx_queue VALUES (1)');
      insertedInTx();
      await txMayFinish;
    });
    await inserted;
    // Started outside the transaction's async context: not an error, it runs on another connection
    // and sees only committed rows.
    const outside = ctx.db.query<{ n: number }>('SELECT count(*) AS n FROM tx_queue');
    releaseTx();
    await txDone;
    const n = (await outside).rows[0]?.n;
    expect(n === 0 || n === 1).toBe(true);
  });

  it('refuses a tx handle used after its transaction ended', async () => {
    let leaked: { query: (sql: string) => Promise<unknown> } | undefined;
    await ctx.db.transaction(async (tx) => {
      leaked = tx;
    });
    await expect(Promise.resolve().then(() => leaked?.query('SELECT 1'))).rejects.toThrow(
      /after its transaction ended/,
    );
  });

  it('delivers NOTIFY payloads to every subscriber of a channel until it unsubscribes', async () => {
    const a: string[] = [];
    const b: string[] = [];
    const unA = await ctx.db.listen('adapter_chan', (p) => a.push(p));
    const unB = await ctx.db.listen('adapter_chan', (p) => b.push(p));
    await ctx.db.query("SELECT pg_notify('adapter_chan', 'one')");
    await ctx.db.query("SELECT pg_notify('other_chan', 'ignored')");
    await expect.poll(() => b).toEqual(['one']);
    expect(a).toEqual(['one']);
    await unA();
    await ctx.db.query("SELECT pg_notify('adapter_chan', 'two')");
    await expect.poll(() => b).toEqual(['one', 'two']);
    expect(a).toEqual(['one']);
    await unB();
  });

  it('rejects an invalid channel name before it reaches SQL', async () => {
    const err = await ctx.db.listen('x"; DROP TABLE tasks; --', () => {}).catch((e: unknown) => e);
    expect(isBoocoderError(err, 'E_INVALID_INPUT')).toBe(true);
  });
});
