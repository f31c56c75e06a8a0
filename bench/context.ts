/** What every suite gets from the command line, and the shape of a suite. */
import type { Metric } from './report.js';

export interface BenchContext {
  /** PostgreSQL the bench databases are created on (and dropped from). */
  adminUrl: string;
  /** Fewer samples: a smoke run of the suite itself, not numbers to publish. */
  quick: boolean;
  /** Dispatcher slots and graphile-worker concurrency, the same for both. */
  concurrency: number;
}

export interface Suite {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<Metric[]>;
}

/** Picks the full or the quick count. */
export function size(ctx: BenchContext, full: number, quick: number): number {
  return ctx.quick ? quick : full;
}
