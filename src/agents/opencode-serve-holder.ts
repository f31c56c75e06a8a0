/**
 * The one shared `opencode serve` of this process (execution path `native`): started on the first
 * task that needs it, started again when it died or when opencode's launch spec changed, and
 * stopped with the app. Every worktree is a `directory` of the same server.
 */
import type { Logger } from '../log.js';
import type { AgentLaunchSpec } from './launch-specs.js';
import { OpencodeServer } from './opencode-serve.js';

export interface OpencodeServerHolderOptions {
  home: string;
  childEnv: Readonly<Record<string, string>>;
  logger: Logger;
}

export class OpencodeServerHolder {
  private current: { key: string; server: Promise<OpencodeServer> } | undefined;
  private closed = false;
  /** One get() at a time: two tasks arriving together must not each start a server. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: OpencodeServerHolderOptions) {}

  /** The live server for `spec`, starting (or replacing) it when needed. */
  get(spec: AgentLaunchSpec): Promise<OpencodeServer> {
    const next = this.queue.then(() => this.liveServer(spec));
    this.queue = next.catch(() => {});
    return next;
  }

  private async liveServer(spec: AgentLaunchSpec): Promise<OpencodeServer> {
    const key = JSON.stringify([spec.command, spec.args, spec.env]);
    const held = this.current;
    if (held && held.key === key) {
      const server = await held.server.catch(() => undefined);
      if (server?.alive) return server;
    }
    if (held) await this.stop(held.server);
    if (this.closed) throw new Error('the opencode server holder is closed');
    const server = OpencodeServer.start({
      spec,
      home: this.o.home,
      childEnv: this.o.childEnv,
      logger: this.o.logger,
    });
    this.current = { key, server };
    server.catch(() => {
      if (this.current?.server === server) this.current = undefined;
    });
    return server;
  }

  async close(): Promise<void> {
    this.closed = true;
    const held = this.current;
    this.current = undefined;
    if (held) await this.stop(held.server);
  }

  private async stop(server: Promise<OpencodeServer>): Promise<void> {
    const started = await server.catch(() => undefined);
    await started?.close();
  }
}
