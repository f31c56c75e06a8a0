import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ListRootsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { readDaemonInfo } from '../../src/bridge/daemon-discovery.js';
import { runStdioBridge } from '../../src/bridge/stdio-bridge.js';
import { isBoocoderError } from '../../src/errors.js';
import { type RunningHttpServer, startHttpServer } from '../../src/http/http-server.js';
import { silentLogger } from '../../src/log.js';
import { isProcessAlive } from '../../src/process-liveness.js';
import { createEchoServer, type EchoResult } from '../fixtures/echo-mcp-server.js';
import { StreamPairTransport } from '../helpers/stream-pair-transport.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BRIDGE_RUNNER = fileURLToPath(new URL('../fixtures/bridge-runner.ts', import.meta.url));
const TOKEN = 'bridge-test-token-0123456789abcdef';

function newClient(roots: string[]): Client {
  const client = new Client({ name: 'bridge-test', version: '1.0.0' }, { capabilities: { roots: {} } });
  client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: roots.map((uri) => ({ uri })) }));
  return client;
}

function echoResult(result: Awaited<ReturnType<Client['callTool']>>): EchoResult {
  const first = (result.content as Array<{ type: string; text?: string }>)[0];
  return JSON.parse(first?.text ?? 'null') as EchoResult;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('stdio bridge in process', () => {
  async function startDaemonServer(): Promise<RunningHttpServer> {
    const server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      token: TOKEN,
      allowedOrigins: [],
      maxSessions: 5,
      sessionIdleMs: 60_000,
      logger: silentLogger,
      createMcpServer: createEchoServer,
    });
    cleanups.push(() => server.close());
    return server;
  }

  function startBridge(server: RunningHttpServer) {
    const toBridge = new PassThrough();
    const fromBridge = new PassThrough();
    const stdout: string[] = [];
    fromBridge.on('data', (c: Buffer) => stdout.push(c.toString('utf8')));
    const bridge = runStdioBridge({
      url: server.url,
      token: TOKEN,
      stdin: toBridge,
      stdout: fromBridge,
      logger: silentLogger,
    });
    return { bridge, transport: new StreamPairTransport(fromBridge, toBridge), stdout };
  }

  it('forwards tools/call, progress and a server→client roots/list, and ends the session when stdin closes', async () => {
    const server = await startDaemonServer();
    const { bridge, transport, stdout } = startBridge(server);
    const client = newClient(['file:///in-process']);
    await client.connect(transport);
    const progress: number[] = [];
    const result = await client.callTool(
      { name: 'echo', arguments: { text: 'via bridge', askRoots: true } },
      undefined,
      {
        onprogress: (p) => progress.push(p.progress),
      },
    );
    expect(echoResult(result)).toEqual({
      text: 'via bridge',
      roots: ['file:///in-process'],
      pid: process.pid,
    });
    expect(progress).toEqual([1, 2, 3]);
    expect(server.sessionCount()).toBe(1);
    await client.close();
    await bridge;
    expect(server.sessionCount()).toBe(0);
    // Only protocol on stdout: every line is a JSON-RPC message.
    for (const line of stdout.join('').split('\n').filter(Boolean))
      expect(JSON.parse(line).jsonrpc).toBe('2.0');
  });

  it('rejects with E_DAEMON_UNAVAILABLE when the daemon goes away', async () => {
    const server = await startDaemonServer();
    const { bridge, transport } = startBridge(server);
    const outcome = bridge.then(
      () => 'resolved',
      (err: unknown) => err,
    );
    const client = newClient([]);
    cleanups.push(() => client.close());
    await client.connect(transport);
    await client.listTools();
    await server.close();
    const error = await outcome;
    expect(isBoocoderError(error, 'E_DAEMON_UNAVAILABLE')).toBe(true);
  }, 20_000);

  it('refuses to run with the wrong token: the daemon answers 401 and the bridge gives up', async () => {
    const server = await startDaemonServer();
    const toBridge = new PassThrough();
    const bridge = runStdioBridge({
      url: server.url,
      token: 'not-the-daemon-token-000000000000',
      stdin: toBridge,
      stdout: new PassThrough(),
      logger: silentLogger,
    });
    const client = newClient([]);
    const connected = client.connect(new StreamPairTransport(new PassThrough(), toBridge));
    cleanups.push(() => client.close());
    await expect(bridge).rejects.toMatchObject({ code: 'E_DAEMON_UNAVAILABLE' });
    expect(server.sessionCount()).toBe(0);
    void connected.catch(() => {});
  });
});

describe('stdio bridge as a process, with a daemon it starts', () => {
  async function newHome(): Promise<string> {
    const home = await realpath(await mkdtemp(join(tmpdir(), 'boocoder-bridge-')));
    cleanups.push(async () => {
      // Stop every daemon the bridges started in this home (their pids are in starts.txt).
      const pids = (await readFile(join(home, 'starts.txt'), 'utf8').catch(() => ''))
        .split('\n')
        .filter(Boolean)
        .map(Number);
      for (const pid of pids) if (isProcessAlive(pid)) process.kill(pid, 'SIGTERM');
      for (const pid of pids) while (isProcessAlive(pid)) await sleep(20);
      await rm(home, { recursive: true, force: true });
    });
    return home;
  }

  async function startedDaemons(home: string): Promise<number[]> {
    return (await readFile(join(home, 'starts.txt'), 'utf8')).split('\n').filter(Boolean).map(Number);
  }

  async function bridgeClient(home: string, roots: string[]) {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', BRIDGE_RUNNER, home],
      cwd: REPO_ROOT,
      stderr: 'pipe',
    });
    const stderr: string[] = [];
    transport.stderr?.on('data', (c: Buffer) => stderr.push(c.toString('utf8')));
    const client = newClient(roots);
    cleanups.push(() => client.close());
    await client.connect(transport);
    return { client, transport, stderr };
  }

  it('lets two bridges share one daemon, each getting its own roots/list answered', async () => {
    const home = await newHome();
    const [one, two] = await Promise.all([
      bridgeClient(home, ['file:///one']),
      bridgeClient(home, ['file:///two']),
    ]);
    const [r1, r2] = await Promise.all([
      one.client.callTool({ name: 'echo', arguments: { text: 'one', askRoots: true } }),
      two.client.callTool({ name: 'echo', arguments: { text: 'two', askRoots: true } }),
    ]);
    const a = echoResult(r1);
    const b = echoResult(r2);
    expect(a).toMatchObject({ text: 'one', roots: ['file:///one'] });
    expect(b).toMatchObject({ text: 'two', roots: ['file:///two'] });
    expect(a.pid).toBe(b.pid);
    expect(await startedDaemons(home)).toEqual([a.pid]);
    expect((await readDaemonInfo(home))?.pid).toBe(a.pid);
    expect([one.transport.pid, two.transport.pid, process.pid]).not.toContain(a.pid);
  }, 60_000);

  function spawnBridge(home: string) {
    const child: ChildProcessWithoutNullStreams = spawn(
      process.execPath,
      ['--import', 'tsx', BRIDGE_RUNNER, home],
      {
        cwd: REPO_ROOT,
        stdio: 'pipe',
      },
    );
    cleanups.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
    });
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    const send = (message: object) => child.stdin.write(`${JSON.stringify(message)}\n`);
    const lines = () => stdout.split('\n').filter(Boolean);
    const initialize = async () => {
      send({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      });
      while (!lines().some((l) => JSON.parse(l).id === 1)) {
        if (child.exitCode !== null) throw new Error(`bridge exited with ${child.exitCode}`);
        await sleep(20);
      }
      send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    };
    return { child, exit, initialize, lines };
  }

  it('exits 0 when its stdin closes, leaving the daemon running', async () => {
    const home = await newHome();
    const bridge = spawnBridge(home);
    await bridge.initialize();
    bridge.child.stdin.end();
    expect(await bridge.exit).toBe(0);
    const [daemonPid] = await startedDaemons(home);
    expect(isProcessAlive(daemonPid as number)).toBe(true);
  }, 60_000);

  it('exits non-zero when the daemon dies, with nothing but protocol on stdout', async () => {
    const home = await newHome();
    const bridge = spawnBridge(home);
    await bridge.initialize();
    const info = await readDaemonInfo(home);
    expect(info).toBeDefined();
    process.kill(info?.pid as number, 'SIGKILL');
    expect(await bridge.exit).toBe(1);
    for (const line of bridge.lines()) expect(JSON.parse(line).jsonrpc).toBe('2.0');
  }, 60_000);
});
