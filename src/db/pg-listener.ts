/**
 * LISTEN for the pg adapter: ONE dedicated connection shared by every channel (a connection per
 * subscriber would exhaust max_connections), kept alive across failures.
 *
 * When the connection errors or ends (server restart, pg_terminate_backend, a network drop noticed
 * by the keepalive ping) it reconnects with capped exponential backoff, LISTENs every channel
 * again, and then calls every subscriber once with payload '': a notification may have been sent
 * while it was down, and subscribers treat any call as a hint to re-read.
 */
import pg from 'pg';
import { BoocoderError } from '../errors.js';
import type { Logger } from '../log.js';
import { assertChannelName } from './adapter-common.js';

export interface PgListenerOptions {
  connectionString: string;
  types: pg.CustomTypesConfig;
  logger: Logger;
  /** How often the idle connection is pinged; a half-open TCP connection is otherwise never noticed. */
  keepaliveMs?: number;
  /** A ping (or LISTEN) not answered within this forces a reconnect. */
  keepaliveTimeoutMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  connectTimeoutMs?: number;
}

export interface PgListener {
  /** Resolves once LISTEN is in effect; throws only when the first connection cannot be made. */
  subscribe(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

type Subscriber = (payload: string) => void;

const noop = () => {};

/** The last query sent on each listen connection. */
const lastQuery = new WeakMap<pg.Client, Promise<unknown>>();

/**
 * One query at a time on a connection: a ping can fall due while a LISTEN is in flight, and pg 8
 * queues the second only with a deprecation warning (pg 9 will refuse it).
 */
function querySerially(c: pg.Client, sql: string): Promise<unknown> {
  const sent = (lastQuery.get(c) ?? Promise.resolve()).then(() => c.query(sql));
  lastQuery.set(c, sent.catch(noop));
  return sent;
}

export function createPgListener(options: PgListenerOptions): PgListener {
  const { logger } = options;
  const keepaliveMs = options.keepaliveMs ?? 30_000;
  const keepaliveTimeoutMs = options.keepaliveTimeoutMs ?? 10_000;
  const minDelay = options.reconnectMinMs ?? 100;
  const maxDelay = options.reconnectMaxMs ?? 5_000;

  const subscribers = new Map<string, Set<Subscriber>>();
  let client: pg.Client | undefined;
  let listened = new Set<string>();
  /** The connection attempt in flight, initial or recovery. */
  let connecting: Promise<void> | undefined;
  /** True from the first loss until a reconnect succeeds: subscribe then returns at once. */
  let recovering = false;
  let failures = 0;
  let closed = false;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let keepaliveTimer: NodeJS.Timeout | undefined;
  let pinging = false;

  const notifySafely = (channel: string, fn: Subscriber, payload: string) => {
    try {
      fn(payload);
    } catch (err) {
      logger.error('notification subscriber threw', { channel, err });
    }
  };

  const dispatch = (channel: string, payload: string) => {
    for (const fn of [...(subscribers.get(channel) ?? [])]) notifySafely(channel, fn, payload);
  };

  const wakeEveryone = () => {
    for (const [channel, fns] of subscribers) for (const fn of [...fns]) notifySafely(channel, fn, '');
  };

  const stopKeepalive = () => {
    clearInterval(keepaliveTimer);
    keepaliveTimer = undefined;
    pinging = false;
  };

  /** Drops a client for good; whatever it emits later is ignored (an unhandled 'error' would crash the process). */
  const discard = (c: pg.Client) => {
    c.removeAllListeners();
    c.on('error', noop);
    void c.end().catch(noop);
    // A graceful end waits for the server's goodbye, which never comes over a half-open connection.
    destroySocket(c);
  };

  const syncChannels = async (c: pg.Client) => {
    for (const channel of [...subscribers.keys()]) {
      if (listened.has(channel)) continue;
      await querySerially(c, `LISTEN "${channel}"`); // validated by assertChannelName
      listened.add(channel);
    }
  };

  const onLost = (c: pg.Client, err?: unknown) => {
    if (c !== client || closed) return;
    client = undefined;
    stopKeepalive();
    discard(c);
    recovering = true;
    logger.warn('notification connection lost; reconnecting', { code: errorCode(err) });
    scheduleReconnect();
  };

  /** A ping not answered within the client's query_timeout (keepaliveTimeoutMs) rejects: onLost. */
  const startKeepalive = (c: pg.Client) => {
    keepaliveTimer = setInterval(() => {
      if (client !== c || pinging) return;
      pinging = true;
      querySerially(c, 'SELECT 1').then(
        () => {
          if (client === c) pinging = false;
        },
        (err: unknown) => onLost(c, err),
      );
    }, keepaliveMs);
  };

  const connectOnce = async () => {
    const c = new pg.Client({
      connectionString: options.connectionString,
      types: options.types,
      keepAlive: true,
      application_name: 'boocoder-listen',
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      // Every query here is tiny; one left unanswered means the connection is dead. Without this a
      // LISTEN sent as the network fails would hang the reconnect (and every subscribe) forever.
      query_timeout: keepaliveTimeoutMs,
    });
    c.on('error', (err) => onLost(c, err));
    c.on('end', () => onLost(c));
    c.on('notification', (msg) => dispatch(msg.channel, msg.payload ?? ''));
    try {
      await c.connect();
      if (closed) throw new Error('closed');
      listened = new Set();
      await syncChannels(c);
    } catch (err) {
      discard(c);
      throw err;
    }
    client = c;
    failures = 0;
    startKeepalive(c);
    // Channels subscribed while LISTEN was in flight.
    await syncChannels(c).catch((err: unknown) => onLost(c, err));
  };

  const scheduleReconnect = () => {
    if (closed || reconnectTimer || connecting) return;
    const delay = Math.min(minDelay * 2 ** failures, maxDelay);
    failures++;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      connecting = connectOnce().finally(() => {
        connecting = undefined;
      });
      connecting.then(
        () => {
          if (closed || !client) return; // lost again at once: the next success wakes everyone
          recovering = false;
          logger.info('notification connection restored');
          wakeEveryone();
        },
        (err: unknown) => {
          if (closed) return;
          logger.warn('notification reconnect failed; retrying', { code: errorCode(err), failures });
          scheduleReconnect();
        },
      );
    }, delay);
  };

  const unsubscribe = async (channel: string, fn: Subscriber) => {
    const fns = subscribers.get(channel);
    if (!fns?.delete(fn) || fns.size > 0) return;
    subscribers.delete(channel);
    if (client && listened.has(channel)) {
      listened.delete(channel);
      await querySerially(client, `UNLISTEN "${channel}"`).catch(noop);
    }
  };

  return {
    async subscribe(channel, onNotify) {
      assertChannelName(channel);
      if (closed) throw new BoocoderError('E_DATABASE', 'the database handle is closed');
      const fn: Subscriber = (payload) => onNotify(payload);
      const fns = subscribers.get(channel) ?? new Set<Subscriber>();
      subscribers.set(channel, fns);
      fns.add(fn);
      const unsub = () => unsubscribe(channel, fn);
      if (client) {
        const c = client;
        await syncChannels(c).catch((err: unknown) => onLost(c, err));
      } else if (!recovering) {
        connecting ??= connectOnce().finally(() => {
          connecting = undefined;
        });
        try {
          await connecting;
        } catch (err) {
          await unsub();
          throw err;
        }
      }
      return unsub;
    },

    async close() {
      closed = true;
      clearTimeout(reconnectTimer);
      reconnectTimer = undefined;
      stopKeepalive();
      await connecting?.catch(noop);
      const c = client;
      client = undefined;
      subscribers.clear();
      if (c) {
        c.removeAllListeners();
        c.on('error', noop);
        // A graceful end waits for the server's goodbye, which never comes on a half-open socket.
        let timer: NodeJS.Timeout | undefined;
        const gaveUp = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, 2_000);
        });
        await Promise.race([c.end().catch(noop), gaveUp]);
        clearTimeout(timer);
        destroySocket(c);
      }
    },
  };
}

function destroySocket(c: pg.Client): void {
  // pg has no public destroy(); its socket is `connection.stream`.
  (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

export function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}
