/**
 * The one place boocoder starts git. Every call goes through `runGit`/`streamGit`, which spawn the
 * git binary directly (no shell, so no argument is ever parsed by a shell) in an environment
 * built from scratch, with configuration that disables every way a repository, or a worktree an
 * agent wrote to, could make git execute code: hooks, fsmonitor, external diff, textconv, pagers,
 * editors, credential helpers, transports, signing programs and filter drivers.
 *
 * Why plain `spawn` rather than simple-git: simple-git builds on the same spawn, but it merges in
 * process.env (which only config.ts may read), exposes a "plugins" layer we would have to audit,
 * and offers no streaming stdout with a byte limit, which capture needs for very large diffs.
 *
 * Why GIT_CONFIG_PARAMETERS rather than `-c`: `-c key=value` splits at the first `=`, so a filter
 * driver named `x=y` in a hostile config could not be overridden with `-c`; the quoted
 * `'key'='value'` form git (>= 2.31) reads from that variable keeps key and value apart. It is
 * also the form git passes on to the git processes it starts itself (submodule recursion), while
 * GIT_CONFIG_COUNT is dropped for those.
 */
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BoocoderError } from '../errors.js';

const DEFAULT_TIMEOUT_MS = 300_000;
const DEFAULT_MAX_BUFFER = 256 * 1024 * 1024;

/** Where the git binary is looked up. A fixed list: the caller's PATH could point at a fake git. */
export const DEFAULT_GIT_SEARCH_PATH = '/usr/local/bin:/usr/bin:/bin:/opt/homebrew/bin:/opt/local/bin';
let gitSearchPath = DEFAULT_GIT_SEARCH_PATH;

/** Lets start-up code (which has the Config) name another PATH to find git on. */
export function setGitSearchPath(searchPath: string): void {
  gitSearchPath = searchPath;
}

/**
 * Settings that win over every config file (command-line scope). Each line names what it blocks.
 */
export const HARDENED_CONFIG: ReadonlyArray<readonly [string, string]> = [
  ['core.hooksPath', '/dev/null'], // hooks: post-checkout, pre-commit, post-index-change, reference-transaction...
  ['core.fsmonitor', 'false'], // core.fsmonitor=<program> runs that program on every index read
  ['core.untrackedCache', 'false'], // the untracked cache is written through fsmonitor data
  ['diff.external', ''], // an external diff program (we also always pass --no-ext-diff)
  ['core.pager', 'cat'], // a pager program
  ['core.editor', 'false'], // an editor program
  ['sequence.editor', 'false'],
  ['commit.gpgSign', 'false'], // gpg.program runs on signing
  ['tag.gpgSign', 'false'],
  ['gpg.program', 'false'],
  ['protocol.allow', 'never'], // any transport: fetch/clone of submodules, remote helpers
  ['core.sshCommand', 'false'],
  ['core.gitProxy', ''],
  ['core.askPass', ''],
  ['credential.helper', ''], // credential helper programs
  ['core.alternateRefsCommand', ''],
  ['submodule.recurse', 'false'], // no git run inside a submodule an agent planted
  ['gc.auto', '0'], // no detached background `git gc --auto` left running
  ['maintenance.auto', 'false'],
  ['core.autocrlf', 'false'], // worktree bytes equal blob bytes (captured with --no-filters)
  ['core.safecrlf', 'false'],
  ['advice.detachedHead', 'false'],
];

/** Quotes one word the way git's sq_dequote reads it (the shell single-quote convention). */
export function sqQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`).replace(/!/g, `'\\!'`)}'`;
}

/** The GIT_CONFIG_PARAMETERS value for a list of [key, value] settings. */
export function encodeConfigParameters(settings: ReadonlyArray<readonly [string, string]>): string {
  return settings.map(([k, v]) => `${sqQuote(k)}=${sqQuote(v)}`).join(' ');
}

/** Overrides that turn one filter driver into a no-op (clean/smudge/process empty, not required). */
export function filterNeutralisers(driverNames: Iterable<string>): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  for (const name of driverNames) {
    for (const key of ['clean', 'smudge', 'process']) out.push([`filter.${name}.${key}`, '']);
    out.push([`filter.${name}.required`, 'false']);
  }
  return out;
}

export interface GitEnvOptions {
  gitDir?: string;
  workTree?: string;
  extraConfig?: ReadonlyArray<readonly [string, string]>;
  /**
   * Lets a read-only command (`status`) write the stat data it refreshed into the index. Off by
   * default: a git that boocoder runs in the user's checkout must never hold its index lock.
   */
  optionalLocks?: boolean;
}

/**
 * The whole environment git runs with. Nothing is inherited: no GIT_DIR/GIT_WORK_TREE/GIT_INDEX_FILE
 * from the parent, no GIT_EXTERNAL_DIFF, no GIT_SSH, no HOME (so no ~/.gitconfig, no XDG config).
 */
export function buildGitEnv(opts: GitEnvOptions = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: gitSearchPath,
    LC_ALL: 'C',
    LANG: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_SYSTEM: '/dev/null',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_ATTR_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_OPTIONAL_LOCKS: opts.optionalLocks ? '1' : '0',
    // refs/replace/* would make `cat-file blob X` return some other object's bytes.
    GIT_NO_REPLACE_OBJECTS: '1',
    GIT_PROTOCOL_FROM_USER: '0',
    GIT_AUTHOR_NAME: 'boocoder',
    GIT_AUTHOR_EMAIL: 'boocoder@localhost',
    GIT_COMMITTER_NAME: 'boocoder',
    GIT_COMMITTER_EMAIL: 'boocoder@localhost',
    GIT_CONFIG_PARAMETERS: encodeConfigParameters([...HARDENED_CONFIG, ...(opts.extraConfig ?? [])]),
    // Performance only (ignored outside glibc): git's zlib streams allocate and free ~256 KiB per
    // object, and glibc's default of handing freed memory straight back to the kernel makes every
    // object pay for fresh zeroed pages. Keeping it cuts hash-object's CPU time by about a third.
    GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=67108864:glibc.malloc.mmap_threshold=33554432',
  };
  if (opts.gitDir !== undefined) env.GIT_DIR = opts.gitDir;
  if (opts.workTree !== undefined) env.GIT_WORK_TREE = opts.workTree;
  return env;
}

export interface RunGitOptions extends GitEnvOptions {
  cwd: string;
  /** stdin; an async iterable is streamed with backpressure (fast-import input too large to hold) */
  input?: Buffer | string | AsyncIterable<Buffer>;
  /** Largest stdout accepted; past it the process is killed and E_GIT_FAILED thrown. */
  maxBuffer?: number;
  timeoutMs?: number;
  /** Exit codes that are answers rather than failures (e.g. 1 from `config --get-regexp`). */
  okExitCodes?: readonly number[];
}

export interface GitBufferResult {
  stdout: Buffer;
  stderr: string;
  exitCode: number;
}

export interface GitResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Absolute paths in git's messages are replaced: messages reach the client's model. */
export function redactGitMessage(text: string, known: Array<[string | undefined, string]>): string {
  let out = text;
  for (const [path, label] of known) if (path) out = out.split(path).join(label);
  out = out.replace(/(^|[\s'"`(])\/[^\s'"`)]*/g, '$1<path>');
  return out.length > 400 ? `${out.slice(0, 400)}…` : out;
}

function failure(args: readonly string[], opts: RunGitOptions, why: string, stderr: string): BoocoderError {
  const known: Array<[string | undefined, string]> = [
    [opts.workTree, '<worktree>'],
    [opts.gitDir, '<git-dir>'],
    [opts.cwd, '<repo>'],
  ];
  const firstLines = stderr.trim().split('\n').slice(0, 3).join(' | ');
  const detail = firstLines ? `: ${redactGitMessage(firstLines, known)}` : '';
  return new BoocoderError('E_GIT_FAILED', `git ${args[0] ?? ''} ${why}${detail}`, {
    args: args.slice(0, 8),
    stderr: stderr.slice(0, 4000),
  });
}

/**
 * Runs git and hands each stdout chunk to `onStdout` instead of buffering it: for outputs (a diff of
 * a thousand files) too large to hold twice in memory. If `onStdout` throws, git is killed; a
 * BoocoderError it throws is what the promise rejects with.
 */
export function streamGit(
  args: readonly string[],
  opts: RunGitOptions,
  onStdout: (chunk: Buffer) => void,
): Promise<{ stderr: string; exitCode: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args as string[], {
      cwd: opts.cwd,
      env: buildGitEnv(opts),
      stdio: ['pipe', 'pipe', 'pipe'],
      shell: false,
      windowsHide: true,
    });
    const stderrChunks: Buffer[] = [];
    let stderrBytes = 0;
    let killedFor: string | undefined;
    // A BoocoderError from `onStdout` (a limit the caller enforces) is the answer, not a git failure.
    let callerError: BoocoderError | undefined;
    const timer = setTimeout(() => {
      killedFor = `timed out after ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const abort = (err: unknown): void => {
      killedFor = err instanceof Error ? err.message : 'aborted';
      if (err instanceof BoocoderError) callerError = err;
      child.kill('SIGKILL');
    };
    child.stdout.on('data', (chunk: Buffer) => {
      if (killedFor) return;
      try {
        onStdout(chunk);
      } catch (err) {
        abort(err);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderrBytes < 64 * 1024) stderrChunks.push(chunk);
      stderrBytes += chunk.length;
    });
    // git may exit before reading all its input (an early error): that EPIPE is not the failure.
    child.stdin.on('error', () => {});
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new BoocoderError('E_GIT_FAILED', 'cannot start git; is it installed?', {}, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(stderrChunks).toString('utf8');
      const exitCode = code ?? -1;
      if (callerError) return reject(callerError);
      if (killedFor) return reject(failure(args, opts, killedFor, stderr));
      if (signal) return reject(failure(args, opts, `was killed by ${signal}`, stderr));
      if (exitCode !== 0 && !(opts.okExitCodes ?? []).includes(exitCode)) {
        return reject(failure(args, opts, `failed (exit ${exitCode})`, stderr));
      }
      resolve({ stderr, exitCode });
    });
    writeInput(child.stdin, opts.input, abort);
  });
}

/** An iterable that throws kills git (a truncated stdin must never pass for a whole one). */
function writeInput(
  stdin: NodeJS.WritableStream,
  input: RunGitOptions['input'],
  abort: (e: unknown) => void,
) {
  if (input === undefined || typeof input === 'string' || Buffer.isBuffer(input))
    return stdin.end(input ?? '');
  let sourceFailed = false;
  async function* watched(from: AsyncIterable<Buffer>) {
    try {
      yield* from;
    } catch (err) {
      sourceFailed = true;
      throw err;
    }
  }
  pipeline(Readable.from(watched(input)), stdin).catch((err: unknown) => sourceFailed && abort(err));
}

/** Runs git and returns stdout as bytes (blob contents, -z listings with arbitrary file names). */
export async function runGitBuffer(args: readonly string[], opts: RunGitOptions): Promise<GitBufferResult> {
  const max = opts.maxBuffer ?? DEFAULT_MAX_BUFFER;
  const chunks: Buffer[] = [];
  let size = 0;
  const { stderr, exitCode } = await streamGit(args, opts, (chunk) => {
    size += chunk.length;
    if (size > max) throw new Error(`output exceeded ${max} bytes`);
    chunks.push(chunk);
  });
  return { stdout: Buffer.concat(chunks, size), stderr, exitCode };
}

/** Runs git and returns stdout as UTF-8 text. */
export async function runGit(args: readonly string[], opts: RunGitOptions): Promise<GitResult> {
  const r = await runGitBuffer(args, opts);
  return { stdout: r.stdout.toString('utf8'), stderr: r.stderr, exitCode: r.exitCode };
}

/**
 * Names of every filter driver defined in any config git would read here (repository, worktree,
 * included files). A driver referenced from .gitattributes is code execution on add, checkout,
 * status and diff, so callers neutralise all of them with `filterNeutralisers`.
 */
export async function listFilterDrivers(opts: RunGitOptions): Promise<string[]> {
  const r = await runGitBuffer(['config', '-z', '--get-regexp', '^filter\\.'], { ...opts, okExitCodes: [1] });
  const names = new Set<string>();
  for (const record of r.stdout.toString('utf8').split('\0')) {
    const key = record.split('\n', 1)[0] ?? '';
    const first = key.indexOf('.');
    const last = key.lastIndexOf('.');
    if (first > 0 && last > first) names.add(key.slice(first + 1, last));
  }
  return [...names];
}

/** Options for running git in one repository with all its filter drivers turned off. */
export async function hardenedOptions(base: Omit<RunGitOptions, 'extraConfig'>): Promise<RunGitOptions> {
  const drivers = await listFilterDrivers(base);
  return { ...base, extraConfig: filterNeutralisers(drivers) };
}

const OID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** Object ids reach git as arguments: anything else (`--output=...`) would be an option injection. */
export function assertOid(value: string, what: string): string {
  if (!OID.test(value)) throw new BoocoderError('E_INVALID_INPUT', `${what} is not a full git object id`);
  return value;
}
