/**
 * What every detector of the leak guard (chaos-leak-guard.ts) hands back: one thing a test file
 * left behind, named so the failure message points at it, and a way to release it so the next
 * test file starts clean.
 */
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Leak {
  /** the kind of thing: `process`, `server`, `PostgreSQL connection`, `interval`, `temp dir` ... */
  kind: string;
  /** which one, and where it was made when that is known */
  description: string;
  release(): Promise<void> | void;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The call stack where something was made, kept unformatted (V8 formats it only when read).
 * Deep enough to reach the test's own frame through a driver such as pg.
 */
export function captureCreationStack(): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  const stack = new Error('created here');
  Error.stackTraceLimit = limit;
  return stack;
}

/**
 * The first frame of the project's own code (src/ or test/, outside the guard), as `path:line:col`
 * relative to the repository: that is the line to look at to fix the leak.
 */
export function creationSite(stack: Error): string {
  const frames = (stack.stack ?? '').split('\n').slice(1);
  const own = frames
    .map((line) => /\(?((?:file:\/\/)?\/[^\s()]+:\d+:\d+)\)?$/.exec(line.trim())?.[1])
    .filter((location): location is string => location !== undefined)
    .map((location) => relative(ROOT, location.replace(/^file:\/\//, '')))
    .find((location) => /^(src|test)\//.test(location) && !location.startsWith('test/helpers/chaos-leak-'));
  return own ?? 'an unknown place (no project frame on the stack)';
}

/** The failure message: every leak on its own line, grouped by kind. */
export function formatLeaks(leaks: readonly Leak[]): string {
  const lines = [...leaks]
    .sort((a, b) => a.kind.localeCompare(b.kind))
    .map((leak) => `  - ${leak.kind}: ${leak.description}`);
  return `this test file left ${leaks.length} thing(s) behind (the guard has released them):\n${lines.join('\n')}`;
}

/** Releases every leak, whatever one release throws: the next file must not inherit the rest. */
export async function releaseAll(leaks: readonly Leak[]): Promise<void> {
  for (const leak of leaks) {
    try {
      await leak.release();
    } catch {
      // Already gone, or beyond saving; the failure message still names it.
    }
  }
}
