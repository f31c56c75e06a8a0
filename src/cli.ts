/**
 * The boocoder command line. `serve` runs the HTTP endpoint and the dispatcher (the main job);
 * `stdio` (the default) is what an MCP client launches; `migrate` applies migrations and exits.
 */
import { Command, InvalidArgumentError } from 'commander';
import { runMigrate, runServe, runStdio } from './commands.js';
import { type Config, loadConfig } from './config.js';
import { BoocoderError } from './errors.js';
import { createLogger, type Logger } from './log.js';
import { describeTrusted, trustRepository } from './projects/trust.js';
import { SERVER_VERSION } from './server.js';

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('a port is a whole number 0-65535');
  return n;
}

function setup(overrides: Partial<Config> = {}): { config: Config; logger: Logger } {
  const config = loadConfig(process.env, overrides);
  return { config, logger: createLogger(config.logLevel, { pid: process.pid }) };
}

function fail(err: unknown): never {
  const message =
    err instanceof BoocoderError ? `${err.code}: ${err.message}` : String((err as Error)?.stack ?? err);
  process.stderr.write(`boocoder: ${message}\n`);
  process.exit(1);
}

const program = new Command()
  .name('boocoder')
  .description('An MCP server that puts a crew of coding agents to work')
  .version(SERVER_VERSION);

program
  .command('serve')
  .description('Run the streamable-HTTP MCP endpoint and the task dispatcher (the main job)')
  .option('--host <host>', 'address to bind (default BOOCODER_HOST or 127.0.0.1)')
  .option('--port <port>', 'port to bind, 0 for any free one (default BOOCODER_PORT or 7311)', parsePort)
  .action(async (opts: { host?: string; port?: number }) => {
    const o: Partial<Config> = {};
    if (opts.host) o.host = opts.host;
    if (opts.port !== undefined) o.port = opts.port;
    await runServe(setup(o)).catch(fail);
  });

program
  .command('stdio', { isDefault: true })
  .description(
    'Serve MCP over stdio (what an MCP client launches); bridges to the local daemon on the embedded database',
  )
  .action(async () => {
    await runStdio(setup()).catch(fail);
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
    process.stdout.write(describeTrusted(trusted));
  });

await program.parseAsync(process.argv);
