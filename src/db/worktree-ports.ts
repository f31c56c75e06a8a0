/**
 * Port blocks of live worktrees: each active worktree owns PORT_BLOCK_SIZE consecutive ports from
 * FIRST_PORT on (its agent gets them as PORT and PORT_RANGE_*), unique among active rows (the
 * partial unique index of 0010), so dev servers in parallel worktrees do not collide. An archived
 * worktree's block is free again.
 */
import { BoocoderError } from '../errors.js';
import type { Queryable } from './db.js';

export const FIRST_PORT = 20_000;
export const PORT_BLOCK_SIZE = 10;
/** Blocks from FIRST_PORT up to 59,999: clear of the ephemeral range most systems use. */
export const PORT_BLOCKS = 4000;

const ASSIGN = `
  UPDATE worktrees SET port_base = (
    SELECT $2::int + s * $3::int FROM generate_series(0, $4::int - 1) s
     WHERE NOT EXISTS (SELECT 1 FROM worktrees o WHERE o.status = 'active' AND o.port_base = $2::int + s * $3::int)
     ORDER BY s LIMIT 1)
   WHERE id = $1 AND port_base IS NULL`;

/** Gives the worktree the lowest free block (keeps one it has); returns its first port. */
export async function assignWorktreePorts(db: Queryable, worktreeId: string): Promise<number> {
  // Two worktrees assigned at once may pick the same block: the unique index refuses the second,
  // which tries again with that block taken.
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await db.query(ASSIGN, [worktreeId, FIRST_PORT, PORT_BLOCK_SIZE, PORT_BLOCKS]);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') continue;
      throw err;
    }
    const { rows } = await db.query<{ port_base: number | null }>(
      'SELECT port_base FROM worktrees WHERE id = $1',
      [worktreeId],
    );
    const base = rows[0]?.port_base;
    if (base !== null && base !== undefined) return base;
    throw new BoocoderError(
      'E_WORKTREE_FAILED',
      `all ${PORT_BLOCKS} port blocks are held by live worktrees; finish or clean up some sessions`,
    );
  }
  throw new BoocoderError('E_WORKTREE_FAILED', 'could not give the worktree a port block; try again');
}

/** Marks the worktree's files copied and its setup run: later runs of the session skip both. */
export async function markWorktreeReady(db: Queryable, worktreeId: string): Promise<void> {
  await db.query('UPDATE worktrees SET ready_at = clock_timestamp() WHERE id = $1', [worktreeId]);
}

/** The worktree's port block (null before its first run) and whether it is ready: one read per run. */
export async function worktreeReadiness(
  db: Queryable,
  worktreeId: string,
): Promise<{ portBase: number | null; ready: boolean }> {
  const { rows } = await db.query<{ port_base: number | null; ready: boolean }>(
    'SELECT port_base, ready_at IS NOT NULL AS ready FROM worktrees WHERE id = $1',
    [worktreeId],
  );
  return { portBase: rows[0]?.port_base ?? null, ready: rows[0]?.ready === true };
}
