/** Small numeric helpers shared by the benchmarks: percentiles, medians, timing, waiting. */
import { setTimeout as delay } from 'node:timers/promises';

/** The p-th percentile (0-100) by the nearest-rank method: always a value that was measured. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new Error('percentile of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export interface Distribution {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

export function distribution(samples: readonly number[]): Distribution {
  return {
    n: samples.length,
    p50: percentile(samples, 50),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    min: Math.min(...samples),
    max: Math.max(...samples),
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
  };
}

/** Milliseconds since an arbitrary origin, sub-millisecond resolution, monotonic. */
export function now(): number {
  return performance.now();
}

/** Runs fn and returns how long it took in milliseconds (and its result). */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const started = now();
  const result = await fn();
  return { ms: now() - started, result };
}

/** Polls `check` every `everyMs` until it returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  everyMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(everyMs);
  }
}

/**
 * A promise per key that some other code path resolves later: the benchmarks hand a task's
 * identity to the database and learn of its start in a callback.
 */
export class Signals<T> {
  private readonly waiting = new Map<string, { resolve: (v: T) => void; promise: Promise<T> }>();

  private entry(key: string) {
    let e = this.waiting.get(key);
    if (!e) {
      let resolve!: (v: T) => void;
      const promise = new Promise<T>((r) => {
        resolve = r;
      });
      e = { resolve, promise };
      this.waiting.set(key, e);
    }
    return e;
  }

  resolve(key: string, value: T): void {
    this.entry(key).resolve(value);
  }

  /** Waits for `key`, failing after timeoutMs so a lost task cannot hang the suite. */
  async wait(key: string, timeoutMs: number): Promise<T> {
    const e = this.entry(key);
    const timeout = new AbortController();
    try {
      return await Promise.race([
        e.promise,
        delay(timeoutMs, undefined, { signal: timeout.signal }).then(() => {
          throw new Error(`${key} did not arrive within ${timeoutMs} ms`);
        }),
      ]);
    } finally {
      timeout.abort();
      this.waiting.delete(key);
    }
  }
}

/** Progress for the person running the suite: stderr, so stdout holds only the table. */
export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}
