/**
 * Credentials scoped to one task: the bearer token an agent's own MCP connection to boocoder
 * carries, so the agent can queue and follow sub-tasks of that task and nothing else.
 *
 * Kept in this process's memory, never in the database: only the daemon that runs the agent
 * accepts it (the agent dies with the daemon, so nothing needs to outlive it), and a database dump
 * or another user of a shared PostgreSQL learns no token. Only the SHA-256 of each token is kept,
 * so a heap dump does not yield a usable credential either.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface SubtaskScope {
  /** The task whose agent holds the token: the parent of every sub-task queued under it. */
  taskId: string;
  projectId: string;
}

/** 32 random bytes (256 bits): unguessable, and the prefix tells a log reader what it is. */
const TOKEN_PREFIX = 'boosub_';

/** True for a string shaped like one of our tokens (valid or not): such a token never falls through to the daemon's own check. */
export function looksScoped(token: string): boolean {
  return token.startsWith(TOKEN_PREFIX);
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export class SubtaskScopes {
  /**
   * The daemon's HTTP MCP endpoint, set once it listens: agents are pointed at this running daemon,
   * never at a second one started from their isolated home.
   */
  endpointUrl: string | undefined;
  private readonly byDigest = new Map<string, { digest: Buffer; scope: SubtaskScope }>();
  /** Owner (a task id, or `chat:<id>` for a warm ACP session's token) → digest key. */
  private readonly keyByOwner = new Map<string, string>();

  /**
   * A new token for `scope`, replacing any earlier one of the same owner (default: the task). A
   * warm agent session keeps one token across its chat's tasks: its owner is the chat, and each
   * turn retargets it to the task that runs (see retarget).
   */
  mint(scope: SubtaskScope, owner: string = scope.taskId): string {
    this.revoke(owner);
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const d = digest(token);
    const key = d.toString('hex');
    this.byDigest.set(key, { digest: d, scope: { ...scope } });
    this.keyByOwner.set(owner, key);
    return token;
  }

  /** Points the owner's token at another task (the next turn of a warm session); false if it has none. */
  retarget(owner: string, scope: SubtaskScope): boolean {
    const key = this.keyByOwner.get(owner);
    const entry = key === undefined ? undefined : this.byDigest.get(key);
    if (!entry) return false;
    entry.scope = { ...scope };
    return true;
  }

  /**
   * The scope of `token`, or undefined. The lookup is keyed by the token's SHA-256, so timing
   * reveals at most a prefix of a hash, which does not help guess a token; the final comparison
   * is constant time anyway.
   */
  resolve(token: string): SubtaskScope | undefined {
    if (!looksScoped(token)) return undefined;
    const d = digest(token);
    const entry = this.byDigest.get(d.toString('hex'));
    if (!entry || !timingSafeEqual(entry.digest, d)) return undefined;
    return { ...entry.scope };
  }

  /** Ends the owner's token (its agent session closed). */
  revoke(owner: string): void {
    const key = this.keyByOwner.get(owner);
    if (key === undefined) return;
    this.byDigest.delete(key);
    this.keyByOwner.delete(owner);
  }

  size(): number {
    return this.byDigest.size;
  }
}
