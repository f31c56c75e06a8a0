/**
 * Starting `opencode serve` and talking to it: the process (its own process group, the agent's
 * isolated home, a random password), the URL it prints once it listens, and an authenticated
 * client for its JSON API and its event stream. The turn logic is in server.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { BoocoderError } from '../../errors.js';
import { agentHomeDir, buildAgentEnv } from '../agent-env.js';
import { agentSpawnFailed } from '../agent-errors.js';
import { TailBuffer } from '../capped-output.js';
import { enterFirstStart, type FirstStartRelease } from '../first-start-gate.js';
import { type AgentLaunchSpec, assertValidAgentName, isAcceptableCommand } from '../launch-specs.js';
import { spawnInProcessGroup, waitForSpawn } from '../process-group.js';
import { SseDecoder } from './events.js';

const SERVE_ARGS = ['serve', '--hostname', '127.0.0.1', '--port', '0'];
/** Only a loopback URL is accepted: the password is never sent anywhere else. */
const LISTENING = /opencode server listening on (http:\/\/127\.0\.0\.1:\d{1,5})\b/;
/**
 * Ids go into request paths: anything but opencode's own shape could walk into other routes
 * (`../../global/dispose`), so they are checked first.
 */
const ID_PATTERNS = {
  session: /^ses_[A-Za-z0-9]{1,64}$/,
  permission: /^per_[A-Za-z0-9]{1,64}$/,
  question: /^que_[A-Za-z0-9]{1,64}$/,
};
const OUTPUT_TAIL_BYTES = 16 * 1024;
const REQUEST_TIMEOUT_MS = 60_000;
const MAX_EVENT_CHARS = 64 * 1024 * 1024;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkedId(kind: keyof typeof ID_PATTERNS, id: unknown): string {
  if (typeof id === 'string' && ID_PATTERNS[kind].test(id)) return id;
  throw new BoocoderError('E_INVALID_INPUT', `not an opencode ${kind} id`);
}

export interface SpawnedServe {
  child: ChildProcess;
  /** The end of what the server printed, for crash reports. */
  output: TailBuffer;
  /** The Authorization header value for every request. */
  auth: string;
  /** The first-start gate of the agent's home (first-start-gate.ts): call once the server answers. */
  release: FirstStartRelease;
}

export interface SpawnServeInput {
  spec: AgentLaunchSpec;
  home: string;
  childEnv: Readonly<Record<string, string>>;
}

/**
 * Spawns the server with a random password: any local user can reach a loopback port, and so
 * can a web page through the user's browser (DNS rebinding); without the password either could
 * drive an agent that edits the user's code. opencode takes it as HTTP basic auth.
 */
export async function spawnServe(input: SpawnServeInput): Promise<SpawnedServe> {
  const { spec } = input;
  assertValidAgentName(spec.name);
  if (!isAcceptableCommand(spec.command)) {
    throw new BoocoderError(
      'E_INVALID_INPUT',
      `agent "${spec.name}": command must be a program name or absolute path`,
    );
  }
  const password = randomBytes(32).toString('base64url');
  const env: Record<string, string> = {
    ...buildAgentEnv({ spec, home: input.home, childEnv: input.childEnv }),
    OPENCODE_SERVER_USERNAME: 'opencode',
    OPENCODE_SERVER_PASSWORD: password,
  };
  const cwd = agentHomeDir(input.home, spec.name);
  mkdirSync(cwd, { recursive: true, mode: 0o700 });
  const release = await enterFirstStart(env.HOME);
  const child = spawnInProcessGroup(spec.command, SERVE_ARGS, {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    await waitForSpawn(child);
  } catch (err) {
    release(false);
    throw agentSpawnFailed(spec, err);
  }
  const output = new TailBuffer(OUTPUT_TAIL_BYTES);
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk));
  const auth = `Basic ${Buffer.from(`opencode:${password}`).toString('base64')}`;
  return { child, output, auth, release };
}

/** The URL the server prints once it listens. Rejects when `signal` aborts or the process exits. */
export function waitForListening(
  child: ChildProcess,
  output: TailBuffer,
  signal: AbortSignal,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let head = '';
    let settled = false;
    const onData = (chunk: Buffer) => {
      output.push(chunk);
      if (settled || head.length > 64 * 1024) return;
      head += chunk.toString('utf8');
      const url = LISTENING.exec(head)?.[1];
      if (url) settle(() => resolve(url));
    };
    const onStop = () => settle(() => reject(new Error('the server stopped before it listened')));
    const settle = (then: () => void) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onStop);
      child.off('exit', onStop);
      then();
    };
    child.stdout?.on('data', onData);
    child.once('exit', onStop);
    signal.addEventListener('abort', onStop, { once: true });
    if (signal.aborted) onStop();
  });
}

/** Query parameters of an API request: opencode scopes most routes to a directory. */
export interface ServeQuery {
  directory?: string;
}

/** An authenticated JSON client of one server; every request ends when `stopped` aborts. */
export class ServeApi {
  constructor(
    readonly url: string,
    private readonly auth: string,
    private readonly spec: AgentLaunchSpec,
    private readonly stopped: AbortSignal,
  ) {}

  /** One request; its JSON answer. `notFoundOk` turns a 404 into undefined. */
  async call(
    method: 'GET' | 'POST',
    path: string,
    query: ServeQuery = {},
    body?: unknown,
    notFoundOk = false,
  ): Promise<unknown> {
    const url = new URL(path, this.url);
    if (query.directory) url.searchParams.set('directory', query.directory);
    const headers: Record<string, string> = { authorization: this.auth };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.any([this.stopped, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      });
    } catch (err) {
      throw new BoocoderError(
        'E_AGENT_FAILED',
        `agent "${this.spec.name}": its opencode server did not answer ${method} ${path}`,
        { err: String(err).slice(0, 500) },
      );
    }
    const text = await res.text();
    if (res.status === 404 && notFoundOk) return undefined;
    if (res.status >= 300) throw this.httpFailed(`${method} ${path}`, res.status, text);
    try {
      return text ? JSON.parse(text) : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Opens GET /global/event (every directory's events) and resolves on its first event
   * (`server.connected`), so no event of a turn started afterwards is missed. `ended` rejects when
   * the stream ends or breaks.
   */
  async openEvents(onData: (data: string[]) => void): Promise<{ ended: Promise<never> }> {
    const res = await fetch(new URL('/global/event', this.url), {
      headers: { authorization: this.auth },
      signal: this.stopped,
    });
    if (!res.ok || !res.body) throw this.httpFailed('GET /global/event', res.status);
    const reader = res.body.getReader();
    const sse = new SseDecoder(MAX_EVENT_CHARS);
    const text = new TextDecoder();
    const next = async (): Promise<string[]> => {
      const { value, done } = await reader.read();
      if (done) throw new Error('the event stream ended');
      return sse.push(text.decode(value, { stream: true }));
    };
    let first: string[] = [];
    while (first.length === 0) first = await next();
    onData(first);
    const ended = (async (): Promise<never> => {
      for (;;) onData(await next());
    })();
    ended.catch(() => {});
    return { ended };
  }

  private httpFailed(route: string, status: number, body = ''): BoocoderError {
    return new BoocoderError(
      'E_AGENT_FAILED',
      `agent "${this.spec.name}": its opencode server answered ${route} with HTTP ${status}; details hold its answer`,
      { status, answer: body.slice(0, 2000) },
    );
  }
}

/** A new session in `directory`, or `sessionId` once it is known to belong to `directory`. */
export async function openSession(
  api: ServeApi,
  directory: string,
  sessionId: string | undefined,
): Promise<string> {
  if (sessionId === undefined) {
    const created = await api.call('POST', '/session', { directory }, {});
    return checkedId('session', isObject(created) ? created.id : undefined);
  }
  const info = await api.call(
    'GET',
    `/session/${checkedId('session', sessionId)}`,
    { directory },
    undefined,
    true,
  );
  // Blocks continuing another worktree's conversation here (or this one's there): opencode
  // would run the session's tools in whatever directory the request names.
  if (!isObject(info) || info.directory !== directory) {
    const message = `opencode session ${sessionId} does not exist in this worktree; start a new session`;
    throw new BoocoderError('E_INVALID_INPUT', message);
  }
  return sessionId;
}

/** Throws E_INVALID_INPUT, naming some models on offer, unless `directory` offers `model`. */
export async function assertModelOffered(
  api: ServeApi,
  spec: AgentLaunchSpec,
  directory: string,
  model: string,
): Promise<void> {
  const config = await api.call('GET', '/config/providers', { directory });
  const providers: unknown[] = isObject(config) && Array.isArray(config.providers) ? config.providers : [];
  const offered = providers.flatMap((p) =>
    isObject(p) && isObject(p.models) ? Object.keys(p.models).map((m) => `${String(p.id)}/${m}`) : [],
  );
  if (offered.includes(model)) return;
  const some = offered.slice(0, 20).join(', ') + (offered.length > 20 ? ', …' : '');
  const message = `agent "${spec.name}" has no model "${model.slice(0, 200)}"; it offers: ${some}`;
  throw new BoocoderError('E_INVALID_INPUT', message);
}
