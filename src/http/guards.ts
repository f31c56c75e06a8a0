/**
 * Pure request checks for the HTTP endpoint: no I/O, so each attack has its own unit test.
 * Order is Host, then Origin, then token: the two browser-facing checks answer 403 before the
 * token check can tell a hostile page anything about whether a token is configured.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isLoopbackHost } from '../config.js';
import { BoocoderError } from '../errors.js';

export type GuardResult =
  | { ok: true }
  | { ok: false; status: 401 | 403; message: string; headers?: Record<string, string> };

export interface GuardPolicy {
  /** Accepted `Host` header values, lower case, `name:port` (see allowedHostHeaders). */
  allowedHosts: ReadonlySet<string>;
  /** Extra accepted origins, normalised `scheme://host[:port]` (see normaliseOrigin). */
  allowedOrigins: ReadonlySet<string>;
  token?: string;
}

export interface RequestHeaders {
  host?: string;
  origin?: string;
  authorization?: string;
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]']);

/** `::1` → `[::1]`: the form an IPv6 literal takes inside Host and Origin headers. */
export function bracketIpv6(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

export function isWildcardHost(host: string): boolean {
  return WILDCARD_HOSTS.has(host);
}

/**
 * The Host header values a legitimate client sends for a server bound to `bindHost:port`.
 * A loopback bind accepts the loopback names; a wildcard bind also accepts `extraNames` (the
 * machine's addresses and host name, gathered by the caller); any other bind accepts itself.
 */
export function allowedHostHeaders(
  bindHost: string,
  port: number,
  extraNames: readonly string[] = [],
): Set<string> {
  const names = new Set<string>();
  const bound = bracketIpv6(bindHost.toLowerCase());
  if (isLoopbackHost(bindHost)) {
    for (const n of LOOPBACK_NAMES) names.add(n);
    names.add(bound);
  } else if (isWildcardHost(bindHost)) {
    for (const n of LOOPBACK_NAMES) names.add(n);
    for (const n of extraNames) names.add(bracketIpv6(n.toLowerCase()));
  } else {
    names.add(bound);
  }
  const out = new Set<string>();
  for (const n of names) {
    out.add(`${n}:${port}`);
    // Port 80 is the default for http://, so browsers and fetch omit it from Host.
    if (port === 80) out.add(n);
  }
  return out;
}

/**
 * `scheme://host[:port]` in lower case with default ports dropped, or undefined for anything
 * that is not an http(s) origin (including the opaque `null` origin of sandboxed frames and files).
 */
export function normaliseOrigin(origin: string): string | undefined {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (
    url.username ||
    url.password ||
    (url.pathname !== '/' && url.pathname !== '') ||
    url.search ||
    url.hash
  ) {
    return undefined;
  }
  return url.origin.toLowerCase();
}

/**
 * Blocks DNS rebinding: a hostile page whose own name resolves to 127.0.0.1 reaches this port,
 * but its browser still sends the page's name in Host, which is not one of ours.
 */
export function checkHost(host: string | undefined, allowedHosts: ReadonlySet<string>): GuardResult {
  if (host && allowedHosts.has(host.toLowerCase())) return { ok: true };
  return { ok: false, status: 403, message: 'forbidden: the Host header does not name this server' };
}

/**
 * Blocks cross-site requests: a page on another origin must not drive the server from the
 * user's browser. No Origin (curl, the SDK clients, Claude Code) is allowed: only browsers send it.
 * Loopback origins are accepted on any port: such a page is served by a process on this machine,
 * which can reach this port directly anyway, and local tools (the MCP inspector) run on their own
 * port. Every other origin must be listed in allowedOrigins.
 */
export function checkOrigin(origin: string | undefined, allowedOrigins: ReadonlySet<string>): GuardResult {
  if (origin === undefined) return { ok: true };
  const normal = normaliseOrigin(origin);
  if (normal !== undefined) {
    const hostname = new URL(normal).hostname;
    if (LOOPBACK_NAMES.includes(hostname) || allowedOrigins.has(normal)) return { ok: true };
  }
  return { ok: false, status: 403, message: 'forbidden: requests from this Origin are not allowed' };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Constant-time equality; comparing fixed-size digests keeps the token's length secret too. */
export function tokensEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** The token of an `Authorization: Bearer <token>` header, if it is one. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '')?.[1];
}

/**
 * Blocks other local users and processes (and, off loopback, the network) from driving the
 * server without the token. Without a configured token every request passes: assertSafeBind
 * allows that only on loopback.
 */
export function checkBearerToken(authorization: string | undefined, token: string | undefined): GuardResult {
  if (token === undefined) return { ok: true };
  const given = bearerToken(authorization);
  if (given !== undefined && tokensEqual(given, token)) return { ok: true };
  return {
    ok: false,
    status: 401,
    message: 'unauthorized: send Authorization: Bearer <token>',
    headers: { 'WWW-Authenticate': 'Bearer realm="boocoder"' },
  };
}

/** Host, then Origin, then (unless `skipToken`) the bearer token. */
export function checkRequest(
  headers: RequestHeaders,
  policy: GuardPolicy,
  options: { skipToken?: boolean } = {},
): GuardResult {
  const host = checkHost(headers.host, policy.allowedHosts);
  if (!host.ok) return host;
  const origin = checkOrigin(headers.origin, policy.allowedOrigins);
  if (!origin.ok) return origin;
  if (options.skipToken) return { ok: true };
  return checkBearerToken(headers.authorization, policy.token);
}

/**
 * Refuses at start-up to expose the server beyond this machine without a token: anyone who can
 * reach the port could otherwise queue agent runs that edit the user's repositories.
 */
export function assertSafeBind(host: string, token: string | undefined): void {
  if (token !== undefined && token.length < 16) {
    throw new BoocoderError('E_CONFIG', 'the HTTP token must be at least 16 characters long');
  }
  if (!isLoopbackHost(host) && token === undefined) {
    throw new BoocoderError(
      'E_CONFIG',
      `refusing to listen on ${host} without a token: set BOOCODER_TOKEN (16+ characters) or bind to 127.0.0.1`,
    );
  }
}
