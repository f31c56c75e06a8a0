/**
 * MCP clients for the benchmarks, all the same SDK `Client`: over stdio (a child process the
 * transport starts) or streamable HTTP, plus server-everything (the protocol peer) in both forms.
 */

import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { fetchWithOwnSignal } from '../src/bridge/fetch-own-signal.js';
import { packageVersion, REPO_ROOT } from './machine.js';
import { baseEnv, freePort, stopChild } from './serve-process.js';
import { waitFor } from './stats.js';

export const EVERYTHING_NAME = `server-everything ${packageVersion('@modelcontextprotocol/server-everything')}`;
export const EVERYTHING_BIN = join(
  REPO_ROOT,
  'node_modules',
  '@modelcontextprotocol',
  'server-everything',
  'dist',
  'index.js',
);

function newClient(): Client {
  return new Client({ name: 'boocoder-bench', version: '1.0.0' });
}

/** Connects over stdio to `node <script> <args>`; the transport owns the child process. */
export async function connectStdio(
  script: string,
  args: string[],
  env: Record<string, string>,
): Promise<Client> {
  const client = newClient();
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [script, ...args],
      env: { ...baseEnv(), ...env },
      stderr: 'ignore',
    }),
  );
  // Clients list tools before calling them; the SDK then checks structured results against the schema.
  await client.listTools();
  return client;
}

export async function connectHttp(url: string): Promise<Client> {
  const client = newClient();
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: fetchWithOwnSignal }));
  await client.listTools();
  return client;
}

export function connectEverythingStdio(): Promise<Client> {
  return connectStdio(EVERYTHING_BIN, ['stdio'], {});
}

export interface EverythingHttp {
  url: string;
  stop(): Promise<void>;
}

/** server-everything's streamable-HTTP server on a free port (it logs each request to stdout: ignored). */
export async function startEverythingHttp(): Promise<EverythingHttp> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [EVERYTHING_BIN, 'streamableHttp'], {
    env: { ...baseEnv(), PORT: String(port) },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const url = `http://127.0.0.1:${port}/mcp`;
  try {
    await waitFor(
      'server-everything to listen',
      async () => {
        if (child.exitCode !== null) throw new Error(`server-everything exited ${child.exitCode}`);
        try {
          await fetch(url, { method: 'GET' });
          return true;
        } catch {
          return undefined;
        }
      },
      30_000,
      50,
    );
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return { url, stop: () => stopChild(child) };
}

/** Calls a tool; a tool error is a broken benchmark, not a sample. */
export async function callTool(
  client: Client,
  name: string,
  args: Record<string, unknown>,
): Promise<CallToolResult> {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.content).slice(0, 500)}`);
  return result;
}

/** Queues a task with new_task and waits (get_task wait_s) until it has finished. */
export async function runTaskToEnd(
  client: Client,
  args: Record<string, unknown>,
): Promise<{ taskId: string; sessionId: string; state: string }> {
  const queued = (await callTool(client, 'new_task', args)).structuredContent as {
    task_id: string;
    session_id: string;
  };
  const state = await waitFor(
    `task ${queued.task_id} to finish`,
    async () => {
      const t = (await callTool(client, 'get_task', { task_id: queued.task_id, wait_s: 20 }))
        .structuredContent as { state: string; finished: boolean };
      return t.finished ? t.state : undefined;
    },
    120_000,
    0,
  );
  return { taskId: queued.task_id, sessionId: queued.session_id, state };
}
