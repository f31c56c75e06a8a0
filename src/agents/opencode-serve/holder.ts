/**
 * The one shared `opencode serve` of this process (execution path `opencode_server`): started on
 * the first task that needs it, started again when it died or when opencode's launch spec changed, and
 * stopped with the app. Every worktree is a `directory` of the same server. Each server is recorded
 * under the home while it runs, and the servers a crashed boocoder left are reaped when the holder
 * is created, i.e. at start (orphans.ts).
 */
import type { Logger } from '../../log.js';
import type { AgentLaunchSpec } from '../launch-specs.js';
import { reapOrphanedServes, recordServeProcess } from './orphans.js';
import { OpencodeServer } from './server.js';

export interface OpencodeServerHolderOptions {
  home: string;
  childEnv: Readonly<Record<string, string>>;
  logger: Logger;
}

type RemoveRecord = () => Promise<void>;

interface HeldServer {
  key: string;
  server: Promise<OpencodeServer>;
  /** Removes the server's orphan record; set once it is written. */
  record: Promise<RemoveRecord | undefined>;
}

export class OpencodeServerHolder {
  private current: HeldServer | undefined;
  private closed = false;
  /** The reaping of a crashed boocoder's servers, begun at construction; close() waits for it. */
  readonly reaped: Promise<void>;
  /** One get() at a time: two tasks arriving together must not each start a server. */
  private queue: Promise<unknown>;

  constructor(private readonly o: OpencodeServerHolderOptions) {
    this.reaped = reapOrphanedServes(o.home, o.logger).then(
      () => {},
      (err: unknown) => o.logger.warn('could not reap orphaned opencode servers', { err }),
    );
    this.queue = this.reaped;
  }

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
    if (held) await this.stop(held);
    if (this.closed) throw new Error('the opencode server holder is closed');
    const server = OpencodeServer.start({
      spec,
      home: this.o.home,
      childEnv: this.o.childEnv,
      logger: this.o.logger,
    });
    const record = server.then(
      (started) => this.record(started),
      () => undefined,
    );
    this.current = { key, server, record };
    server.catch(() => {
      if (this.current?.server === server) this.current = undefined;
    });
    // Recorded before any task runs on it: a crash from here on leaves a server the next start finds.
    await record;
    return server;
  }

  private async record(server: OpencodeServer): Promise<RemoveRecord | undefined> {
    try {
      return await recordServeProcess(this.o.home, server.pid);
    } catch (err) {
      this.o.logger.warn('could not record the opencode server process', { err });
      return undefined;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.reaped;
    const held = this.current;
    this.current = undefined;
    if (held) await this.stop(held);
  }

  private async stop(held: HeldServer): Promise<void> {
    const started = await held.server.catch(() => undefined);
    await started?.close();
    const remove = await held.record;
    await remove?.().catch((err: unknown) =>
      this.o.logger.warn('could not remove the opencode server record', { err }),
    );
  }
}
