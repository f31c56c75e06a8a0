/**
 * Starts a real boocoder (app, dispatcher, HTTP endpoint) in this process on a test database, with
 * the deterministic ACP test agent configured as the default agent, plus SDK clients to drive it.
 */
import { chmod, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { type App, startApp } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/config.js';
import type { Db } from '../../src/db/db.js';
import { type RunningHttpServer, startHttpServer } from '../../src/http/http-server.js';
import { createLogger } from '../../src/log.js';
import { createServer } from '../../src/server.js';
import { scopedCredentialResolver } from '../../src/subtasks/scoped-server.js';
import { acpTestAgentSpec } from '../fixtures/acp-test-agent.js';

export interface TestBoocoder {
  home: string;
  config: Config;
  app: App;
  http: RunningHttpServer;
  close(): Promise<void>;
}

/** The env a test boocoder runs with: the test agent by default, fast polls, short leases. */
export async function testHome(
  extraEnv: Record<string, string> = {},
): Promise<{ home: string; env: Record<string, string> }> {
  const home = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-home-')));
  // As root the embedded PostgreSQL runs as `nobody`, who must be able to enter the home to reach
  // BOOCODER_PG_DIR inside it (the default as root is under /var/lib, which a test must not fill).
  await chmod(home, 0o711);
  const spec = acpTestAgentSpec();
  await writeFile(
    join(home, 'config.json'),
    JSON.stringify({
      defaultAgent: 'fixture',
      agents: { fixture: { command: spec.command, args: spec.args } },
    }),
  );
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? home,
    BOOCODER_HOME: home,
    // A daemon a test's `boocoder stdio` starts takes a free port, never the user's 7311.
    BOOCODER_PORT: '0',
    BOOCODER_PG_DIR: join(home, 'pg'),
    BOOCODER_POLL_MS: '500',
    BOOCODER_LEASE_MS: '10000',
    BOOCODER_SHUTDOWN_GRACE_MS: '2000',
    BOOCODER_LOG_LEVEL: process.env.BOOCODER_TEST_LOG_LEVEL ?? 'error',
    ...extraEnv,
  };
  return { home, env };
}

export async function startTestBoocoder(
  db: Db,
  extraEnv: Record<string, string> = {},
): Promise<TestBoocoder> {
  const { home, env } = await testHome(extraEnv);
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel, { test: true });
  const app = await startApp({ config, logger, withDispatcher: true, db });
  const http = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    token: config.token,
    allowedOrigins: [],
    maxSessions: 20,
    sessionIdleMs: 60_000,
    logger,
    createMcpServer: () => createServer(app.deps),
    scopedCredential: scopedCredentialResolver(app.deps),
  });
  if (app.deps.subtaskScopes) app.deps.subtaskScopes.endpointUrl = http.url;
  return {
    home,
    config,
    app,
    http,
    async close() {
      await http.close();
      await app.close();
      await rm(home, { recursive: true, force: true });
    },
  };
}

export async function connectHttpClient(url: string, token?: string): Promise<Client> {
  const client = new Client({ name: 'boocoder-test', version: '1.0.0' });
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

/** Calls a tool and returns its structuredContent; fails the test on an isError result. */
export async function callOk<T = Record<string, unknown>>(
  client: Client,
  name: string,
  args: Record<string, unknown>,
): Promise<T> {
  const res = (await client.callTool({ name, arguments: args })) as CallToolResult;
  if (res.isError) throw new Error(`${name} failed: ${JSON.stringify(res.content)}`);
  return res.structuredContent as T;
}

/** Calls a tool expecting a domain error; returns the error text (it starts with the stable code). */
export async function callError(
  client: Client,
  name: string,
  args: Record<string, unknown>,
): Promise<string> {
  const res = (await client.callTool({ name, arguments: args })) as CallToolResult;
  if (!res.isError)
    throw new Error(`${name} succeeded but an error was expected: ${JSON.stringify(res.structuredContent)}`);
  const first = res.content[0];
  return first && first.type === 'text' ? first.text : '';
}
