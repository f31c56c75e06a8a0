/** Races agent requests against a caller's abort signal and a time budget. */

export type Interruption = 'abort' | 'timeout';

export class Interrupted extends Error {
  constructor(readonly reason: Interruption) {
    super(reason);
  }
}

export interface Interruptible {
  /** Resolves like `work`, or rejects with Interrupted once the signal aborts or the time is up. */
  untilStopped<T>(work: Promise<T>): Promise<T>;
  /** Clears the timer and the abort listener. */
  dispose(): void;
}

export function interruptible(signal: AbortSignal | undefined, timeoutMs: number): Interruptible {
  const stop = new AbortController();
  let interruption: Interruption | undefined;
  const interrupt = (reason: Interruption) => {
    interruption ??= reason;
    stop.abort();
  };
  const onAbort = () => interrupt('abort');
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) interrupt('abort');
  // setTimeout fires at once for delays past 2^31-1 ms: clamp instead of timing out immediately.
  const timer = setTimeout(() => interrupt('timeout'), Math.min(timeoutMs, 2 ** 31 - 1));
  const stopped = new Promise<never>((_, reject) => {
    const fail = () => reject(new Interrupted(interruption ?? 'abort'));
    if (stop.signal.aborted) fail();
    else stop.signal.addEventListener('abort', fail, { once: true });
  });
  stopped.catch(() => {});
  return {
    untilStopped: <T>(work: Promise<T>) => Promise.race([work, stopped]),
    dispose() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}
