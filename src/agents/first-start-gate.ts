/**
 * Serialises the FIRST start of agents that share a home. An agent's first start in a fresh home
 * creates and migrates its state database; opencode 1.18 started three times at once in a new home
 * fails one of them with "database is locked" (SQLite). So until one start in a home has reached a
 * session, other starts in that home wait for it; after that they run concurrently, which opencode
 * handles. In memory: after a restart the first start is gated again, which costs one agent start.
 */

const readyHomes = new Set<string>();
const gates = new Map<string, Promise<void>>();

export type FirstStartRelease = (reachedSession: boolean) => void;

const noop: FirstStartRelease = () => {};

/**
 * Waits until this caller may start an agent in `home`. Call the returned function once the agent
 * has a session (true) or failed before that (false: the next waiter then goes first). Rejects
 * with the signal's reason if `signal` aborts while waiting.
 */
export async function enterFirstStart(
  home: string | undefined,
  signal?: AbortSignal,
): Promise<FirstStartRelease> {
  if (!home) return noop;
  for (;;) {
    if (readyHomes.has(home)) return noop;
    const gate = gates.get(home);
    if (!gate) break;
    await waitOrAbort(gate, signal);
  }
  let open = () => {};
  gates.set(
    home,
    new Promise<void>((resolve) => {
      open = resolve;
    }),
  );
  let released = false;
  return (reachedSession) => {
    if (released) return;
    released = true;
    if (reachedSession) readyHomes.add(home);
    gates.delete(home);
    open();
  };
}

function waitOrAbort(gate: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return gate;
  signal.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    gate.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
