/**
 * The boocoder command line. `serve` runs the HTTP endpoint and the dispatcher (the main job);
 * `stdio` (also `boocoder` alone, as MCP clients launch it) speaks MCP on stdin/stdout; `status`,
 * `stop` and `logs` are for a human; `migrate` applies migrations and exits.
 */
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { runLogs } from './admin/logs.js';
import { runStatus } from './admin/status.js';
import { runStop } from './admin/stop.js';
import { DAEMON_LOG_FILE } from './bridge/daemon-discovery.js';
import { runMigrate, runServe, runStdio } from './commands.js';
import { type Config, loadConfig } from './config.js';
import { BoocoderError } from './errors.js';
import { createLogger, type Logger } from './log.js';
import { describeTrusted, trustRepository } from './projects/trust.js';
import { SERVER_VERSION } from './server.js';

const COMMANDS = ['serve', 'stdio', 'status', 'stop', 'logs', 'migrate', 'trust', 'help'] as const;

const TTY_HINT =
  'boocoder speaks MCP (JSON-RPC) on stdin: an MCP client such as Claude Code starts it, not a person.\n' +
  'To run the server yourself: `boocoder serve` (HTTP on 127.0.0.1:7311 plus the dispatcher).\n' +
  'To see a running one: `boocoder status`, `boocoder logs -f`, `boocoder stop`; all commands: `boocoder --help`.\n';

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('a port is a whole number 0-65535');
  return n;
}

/**
 * A server started in a terminal also appends its log to daemon.log, so `boocoder logs` shows
 * the server of this home whoever started it (a daemon's stderr already is that file).
 */
function teeToDaemonLog(home: string): (line: string) => void {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const file = createWriteStream(join(home, DAEMON_LOG_FILE), { flags: 'a', mode: 0o600 });
  file.on('error', () => {}); // the terminal copy still goes out
  return (line) => {
    process.stderr.write(`${line}\n`);
    file.write(`${line}\n`);
  };
}

function setup(overrides: Partial<Config> = {}, tee = false): { config: Config; logger: Logger } {
  const config = loadConfig(process.env, overrides);
  const sink = tee ? teeToDaemonLog(config.home) : undefined;
  return { config, logger: createLogger(config.logLevel, { pid: process.pid }, sink) };
}

/** Every CLI error is one line: its code and what to do, never a stack trace. */
function fail(err: unknown): never {
  const message =
    err instanceof BoocoderError
      ? `${err.code}: ${err.message}`
      : `E_INTERNAL: ${String((err as Error)?.message ?? err).split('\n')[0]}; \`boocoder logs\` may say more`;
  process.stderr.write(`boocoder: ${message}\n`);
  process.exit(1);
}

function unknownCommand(word: string): never {
  fail(
    new BoocoderError(
      'E_USAGE',
      `unknown command '${word.slice(0, 40)}'; the commands are ${COMMANDS.filter((c) => c !== 'help').join(', ')} (\`boocoder --help\` says more)`,
    ),
  );
}

async function stdio(): Promise<void> {
  if (process.stdin.isTTY) process.stderr.write(TTY_HINT);
  await runStdio(setup()).catch(fail);
}

const program = new Command()
  .name('boocoder')
  .description('An MCP server that puts a crew of coding agents to work')
  .version(SERVER_VERSION)
  .exitOverride()
  // Commander's own messages are replaced by one line with a code (fail): silence them.
  .configureOutput({ writeErr: () => {} })
  .action(async () => {
    // `boocoder` alone is what MCP clients launch; at a terminal it only explains itself.
    if (process.stdin.isTTY) {
      process.stderr.write(TTY_HINT);
      return;
    }
    await stdio();
  });

program
  .command('serve')
  .description('Run the streamable-HTTP MCP endpoint and the task dispatcher (the main job)')
  .option('--host <host>', 'address to bind (default BOOCODER_HOST or 127.0.0.1)')
  .option('--port <port>', 'port to bind, 0 for any free one (default BOOCODER_PORT or 7311)', parsePort)
  // Set by `boocoder stdio` when it launches the server: it already holds the home's start lock.
  .addOption(new Option('--daemon').hideHelp())
  .action(async (opts: { host?: string; port?: number; daemon?: boolean }) => {
    const o: Partial<Config> = {};
    if (opts.host) o.host = opts.host;
    if (opts.port !== undefined) o.port = opts.port;
    await runServe(setup(o, !opts.daemon), { daemon: opts.daemon === true }).catch(fail);
  });

program
  .command('stdio')
  .description('Serve MCP over stdio (what an MCP client launches); finds or starts the server of this home')
  .action(stdio);

program
  .command('status')
  .description("Show this home's server: pid, URL, database, uptime, tasks, warm agents")
  .action(async () => {
    await runStatus(setup().config, process.stdout).catch(fail);
  });

program
  .command('stop')
  .description(
    'Stop the server gracefully: running agents get the shutdown grace, their tasks are handed back',
  )
  .action(async () => {
    await runStop(setup().config, process.stdout).catch(fail);
  });

program
  .command('logs')
  .description("Print the end of the server's log ($BOOCODER_HOME/daemon.log)")
  .option('-f, --follow', 'keep printing new lines until interrupted')
  .action(async (opts: { follow?: boolean }) => {
    await runLogs(setup().config, { follow: opts.follow === true, out: process.stdout }).catch(fail);
  });

program
  .command('migrate')
  .description('Apply database migrations and exit')
  .action(async () => {
    await runMigrate(setup()).catch(fail);
  });

program
  .command('trust [path]')
  .description(
    "Trust the repository's .boocoder.json commands (setup, check) as they are now; asked again when it changes",
  )
  .action(async (path?: string) => {
    const { config } = setup();
    const trusted = await trustRepository(config.home, path ?? process.cwd()).catch(fail);
    // A command for a human at a terminal (like status, stop and logs): its answer goes to stdout;
    // only `stdio` speaks MCP there.
    process.stdout.write(describeTrusted(trusted));
  });

const first = process.argv[2];
if (first !== undefined && !first.startsWith('-') && !(COMMANDS as readonly string[]).includes(first))
  unknownCommand(first);
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) fail(err);
  if (err.exitCode === 0) process.exit(0); // --help, --version
  fail(new BoocoderError('E_USAGE', `${err.message.replace(/^error: /, '')}; see \`boocoder --help\``));
}
