import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isBoocoderError } from '../../src/errors.js';
import {
  allowedHostHeaders,
  assertSafeBind,
  checkBearerToken,
  checkHost,
  checkOrigin,
  checkRequest,
  normaliseOrigin,
  tokensEqual,
} from '../../src/http/guards.js';

const TOKEN = 'correct-horse-battery-staple-42';
const loopbackHosts = allowedHostHeaders('127.0.0.1', 7311);
const policy = { allowedHosts: loopbackHosts, allowedOrigins: new Set<string>(), token: TOKEN };

describe('DNS rebinding: the Host header must name this server', () => {
  it('accepts the loopback names with the bound port, in any case', () => {
    for (const host of ['127.0.0.1:7311', 'localhost:7311', 'LOCALHOST:7311', '[::1]:7311']) {
      expect(checkHost(host, loopbackHosts), host).toEqual({ ok: true });
    }
  });

  it('refuses a rebinding page: its own name, the right port', () => {
    for (const host of [
      'evil.example:7311',
      'localhost.evil.example:7311',
      '127.0.0.1.nip.io:7311',
      'attacker:7311',
    ]) {
      expect(checkHost(host, loopbackHosts).ok, host).toBe(false);
    }
  });

  it('refuses a loopback name with another port, without a port, missing or empty', () => {
    for (const host of ['127.0.0.1:7312', 'localhost', '127.0.0.1', undefined, '', '127.0.0.1:7311 ']) {
      const verdict = checkHost(host, loopbackHosts);
      expect(verdict.ok, String(host)).toBe(false);
      if (!verdict.ok) expect(verdict.status).toBe(403);
    }
  });

  it('accepts bare names only on port 80, where clients leave the port out', () => {
    expect(checkHost('localhost', allowedHostHeaders('127.0.0.1', 80)).ok).toBe(true);
  });

  it('accepts only the configured name for a non-loopback bind', () => {
    const hosts = allowedHostHeaders('10.1.2.3', 9000);
    expect(checkHost('10.1.2.3:9000', hosts).ok).toBe(true);
    expect(checkHost('localhost:9000', hosts).ok).toBe(false);
    expect(checkHost('evil.example:9000', hosts).ok).toBe(false);
  });

  it('accepts loopback and the given machine names for a wildcard bind', () => {
    const hosts = allowedHostHeaders('0.0.0.0', 9000, ['devbox', '192.0.2.7', 'fe80::1']);
    for (const host of ['localhost:9000', 'devbox:9000', '192.0.2.7:9000', '[fe80::1]:9000']) {
      expect(checkHost(host, hosts).ok, host).toBe(true);
    }
    expect(checkHost('evil.example:9000', hosts).ok).toBe(false);
  });
});

describe('cross-site requests: Origin must be loopback or listed', () => {
  const listed = new Set(['https://tools.example.com']);

  it('lets requests without Origin through (non-browser clients)', () => {
    expect(checkOrigin(undefined, listed).ok).toBe(true);
  });

  it('accepts loopback origins on any port (local tools such as the inspector)', () => {
    for (const origin of [
      'http://localhost:6274',
      'http://127.0.0.1:7311',
      'https://[::1]:8443',
      'http://LOCALHOST',
    ]) {
      expect(checkOrigin(origin, listed).ok, origin).toBe(true);
    }
  });

  it('accepts an origin listed in allowedOrigins, exactly', () => {
    expect(checkOrigin('https://tools.example.com', listed).ok).toBe(true);
    expect(checkOrigin('https://tools.example.com:443', listed).ok).toBe(true);
    expect(checkOrigin('https://tools.example.com:8443', listed).ok).toBe(false);
    expect(checkOrigin('http://tools.example.com', listed).ok).toBe(false);
  });

  it('refuses foreign, look-alike, opaque and non-http origins', () => {
    for (const origin of [
      'https://evil.example',
      'http://localhost.evil.example',
      'http://127.0.0.1.evil.example',
      'http://evil.example#@localhost',
      'null',
      'file://',
      'chrome-extension://abcdef',
      '',
      'localhost',
    ]) {
      const verdict = checkOrigin(origin, listed);
      expect(verdict.ok, origin).toBe(false);
      if (!verdict.ok) expect(verdict.status).toBe(403);
    }
  });

  it('normalises origins and rejects anything with a path, credentials or query', () => {
    expect(normaliseOrigin('HTTPS://Tools.Example.com:443')).toBe('https://tools.example.com');
    expect(normaliseOrigin('https://tools.example.com/')).toBe('https://tools.example.com');
    expect(normaliseOrigin('https://tools.example.com/app')).toBeUndefined();
    expect(normaliseOrigin('https://user:pw@tools.example.com')).toBeUndefined();
    expect(normaliseOrigin('https://tools.example.com?x=1')).toBeUndefined();
  });
});

describe('token: other local processes without the token are refused', () => {
  it('refuses a missing, wrong, same-length-wrong or wrong-scheme token with 401 and WWW-Authenticate', () => {
    const sameLength = `${TOKEN.slice(0, -1)}3`;
    expect(sameLength.length).toBe(TOKEN.length);
    for (const header of [
      undefined,
      '',
      'Bearer',
      'Bearer wrong',
      `Bearer ${sameLength}`,
      `Basic ${TOKEN}`,
      TOKEN,
      `Bearer ${TOKEN} extra`,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(1)}`,
    ]) {
      const verdict = checkBearerToken(header, TOKEN);
      expect(verdict.ok, String(header)).toBe(false);
      if (!verdict.ok) {
        expect(verdict.status).toBe(401);
        expect(verdict.headers?.['WWW-Authenticate']).toMatch(/^Bearer/);
      }
    }
  });

  it('accepts the right token, with the scheme in any case', () => {
    expect(checkBearerToken(`Bearer ${TOKEN}`, TOKEN).ok).toBe(true);
    expect(checkBearerToken(`bearer ${TOKEN}`, TOKEN).ok).toBe(true);
  });

  it('lets everything through when no token is configured (loopback only, see assertSafeBind)', () => {
    expect(checkBearerToken(undefined, undefined).ok).toBe(true);
  });

  it('compares tokens exactly, whatever their lengths', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), fc.string({ maxLength: 80 }), (a, b) => {
        expect(tokensEqual(a, b)).toBe(a === b);
        expect(tokensEqual(a, a)).toBe(true);
      }),
    );
  });
});

describe('check order: Host, then Origin, then token', () => {
  it('answers 403 for a foreign Host before looking at the token', () => {
    const verdict = checkRequest({ host: 'evil.example:7311', authorization: undefined }, policy);
    expect(verdict).toMatchObject({ ok: false, status: 403 });
  });

  it('answers 403 for a foreign Origin even with the right token', () => {
    const verdict = checkRequest(
      { host: 'localhost:7311', origin: 'https://evil.example', authorization: `Bearer ${TOKEN}` },
      policy,
    );
    expect(verdict).toMatchObject({ ok: false, status: 403 });
  });

  it('answers 401 only after Host and Origin pass, and skips the token when asked (healthz)', () => {
    expect(checkRequest({ host: 'localhost:7311' }, policy)).toMatchObject({ ok: false, status: 401 });
    expect(checkRequest({ host: 'localhost:7311' }, policy, { skipToken: true })).toEqual({ ok: true });
    expect(checkRequest({ host: 'localhost:7311', authorization: `Bearer ${TOKEN}` }, policy)).toEqual({
      ok: true,
    });
  });
});

describe('exposure: binding beyond loopback needs a token', () => {
  it('refuses a non-loopback bind without a token with E_CONFIG', () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.10', 'devbox.local']) {
      let thrown: unknown;
      try {
        assertSafeBind(host, undefined);
      } catch (err) {
        thrown = err;
      }
      expect(isBoocoderError(thrown, 'E_CONFIG'), host).toBe(true);
    }
  });

  it('allows loopback without a token, and anything with a token of 16+ characters', () => {
    for (const host of ['127.0.0.1', 'localhost', '::1', '127.0.0.2'])
      expect(() => assertSafeBind(host, undefined)).not.toThrow();
    expect(() => assertSafeBind('0.0.0.0', TOKEN)).not.toThrow();
    expect(() => assertSafeBind('127.0.0.1', 'short')).toThrow(/16 characters/);
  });
});
