/**
 * Leak detector for handles that keep a process (or a PostgreSQL backend) busy: sockets still open
 * (PostgreSQL pools and clients, HTTP clients), servers still listening with the connections they
 * accepted, and armed intervals. Each is recorded where it is made, by wrapping
 * `net.Socket.prototype.connect`, `net.Server.prototype.listen` and the global `setInterval`; the
 * wrappers only record (with the creation stack, so the message names the line to fix) and call
 * through. Recording at creation sees what `process.getActiveResourcesInfo()` cannot: which socket
 * leaked, and unref'd sockets, which still hold a PostgreSQL backend.
 */
import type { Server as HttpServer } from 'node:http';
import net from 'node:net';
import { captureCreationStack, creationSite, type Leak } from './chaos-leak-common.js';

interface Made<T> {
  seq: number;
  thing: T;
  stack: Error;
  /** where a client socket was asked to connect (known before it is connected) */
  target: string;
  /** a connection a server accepted, rather than one this process opened */
  accepted?: boolean;
}

let seq = 0;
const openSockets = new Set<Made<net.Socket>>();
const listeningServers = new Set<Made<net.Server>>();
const armedIntervals = new Set<Made<NodeJS.Timeout>>();
/** port -> seq of the last connection attempt to it */
const contactedPorts = new Map<number, number>();
let installed = false;

function connectTarget(args: unknown[]): { text: string; port?: number } {
  // net.connect() passes its normalised arguments as one array; socket.connect() takes them as is.
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (first && typeof first === 'object') {
    const o = first as { host?: string; port?: number | string; path?: string };
    if (o.path !== undefined) return { text: o.path };
    return { text: `${o.host ?? 'localhost'}:${o.port}`, port: Number(o.port) };
  }
  // socket.connect('/run/x.sock') names a Unix socket; socket.connect(5432, host) a TCP port.
  if (typeof first === 'string' && !/^\d+$/.test(first)) return { text: first };
  const host = typeof args[1] === 'string' ? args[1] : 'localhost';
  return { text: `${host}:${String(first)}`, port: Number(first) };
}

function trackUntilClosed<T extends net.Socket | net.Server>(set: Set<Made<T>>, made: Made<T>): void {
  set.add(made);
  // Dropped as soon as it closes: a file that opens thousands of connections keeps no stacks for them.
  made.thing.once('close', () => set.delete(made));
}

/** A socket a server accepted carries the server's creation stack: that is where the fix goes. */
function trackAccepted(server: Made<net.Server>, socket: net.Socket): void {
  const from =
    socket.remotePort === undefined ? 'a local client' : `${socket.remoteAddress}:${socket.remotePort}`;
  const target = `${server.target} from ${from}`;
  trackUntilClosed(openSockets, { seq: ++seq, thing: socket, stack: server.stack, target, accepted: true });
}

function install(): void {
  if (installed) return;
  installed = true;
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function recordConnect(this: net.Socket, ...args: unknown[]) {
    const target = connectTarget(args);
    const made = { seq: ++seq, thing: this, stack: captureCreationStack(), target: target.text };
    if (target.port !== undefined && Number.isInteger(target.port)) contactedPorts.set(target.port, made.seq);
    trackUntilClosed(openSockets, made);
    try {
      return Reflect.apply(connect, this, args);
    } catch (err) {
      openSockets.delete(made); // invalid arguments: nothing was opened
      throw err;
    }
  } as typeof connect;

  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function recordListen(this: net.Server, ...args: unknown[]) {
    const made = { seq: ++seq, thing: this, stack: captureCreationStack(), target: 'not yet listening' };
    this.once('listening', () => {
      const address = this.address();
      made.target = typeof address === 'string' ? address : `${address?.address}:${address?.port}`;
    });
    this.on('connection', (socket: net.Socket) => trackAccepted(made, socket));
    trackUntilClosed(listeningServers, made);
    return Reflect.apply(listen, this, args);
  } as typeof listen;

  const setIntervalAsGiven = globalThis.setInterval;
  globalThis.setInterval = Object.assign(function recordInterval(this: unknown, ...args: unknown[]) {
    const timer = Reflect.apply(setIntervalAsGiven, this, args) as NodeJS.Timeout;
    armedIntervals.add({ seq: ++seq, thing: timer, stack: captureCreationStack(), target: '' });
    return timer;
  }, setIntervalAsGiven) as typeof setInterval;
}

/** Node sets `_destroyed` when an interval is cleared; there is no public way to ask. */
function isCleared(timer: NodeJS.Timeout): boolean {
  return Boolean((timer as NodeJS.Timeout & { _destroyed?: boolean })._destroyed);
}

export interface HandleTracker {
  find(): Leak[];
  /** True when something connected to `port` since the tracker started (or was last reset). */
  contacted(port: number): boolean;
  /** Only what is made from now on counts: the next file starts from nothing. */
  reset(): void;
}

export function trackHandles(options: { postgresPort: number }): HandleTracker {
  install();
  let since = seq;
  const socketLeak = (made: Made<net.Socket>): Leak => {
    const s = made.thing;
    if (made.accepted) {
      return {
        kind: 'accepted connection',
        description: `on ${made.target}, to the server started at ${creationSite(made.stack)}`,
        release: () => void s.destroy(),
      };
    }
    const live = s.remotePort === undefined ? made.target : `${s.remoteAddress}:${s.remotePort}`;
    const kind = s.remotePort === options.postgresPort ? 'PostgreSQL connection' : 'open socket';
    const local = s.localPort === undefined ? '' : ` from local port ${s.localPort}`;
    return {
      kind,
      description: `to ${live}${local}, opened at ${creationSite(made.stack)}`,
      release: () => void s.destroy(),
    };
  };
  const serverLeak = (made: Made<net.Server>): Leak => ({
    kind: 'listening server',
    description: `on ${made.target}, started at ${creationSite(made.stack)}`,
    release: () => {
      made.thing.close();
      (made.thing as Partial<Pick<HttpServer, 'closeAllConnections'>>).closeAllConnections?.();
    },
  });
  const intervalLeak = (made: Made<NodeJS.Timeout>): Leak => ({
    kind: 'interval',
    description: `armed at ${creationSite(made.stack)}`,
    release: () => clearInterval(made.thing),
  });
  return {
    find() {
      for (const made of armedIntervals) if (isCleared(made.thing)) armedIntervals.delete(made);
      const mine = <T>(set: Set<Made<T>>) => [...set].filter((made) => made.seq > since);
      return [
        ...mine(openSockets)
          .filter((made) => !made.thing.destroyed)
          .map(socketLeak),
        ...mine(listeningServers)
          .filter((made) => made.thing.listening)
          .map(serverLeak),
        // An unref'd interval does not keep the process alive: it is the owner's business.
        ...mine(armedIntervals)
          .filter((made) => made.thing.hasRef())
          .map(intervalLeak),
      ];
    },
    contacted(port) {
      return (contactedPorts.get(port) ?? 0) > since;
    },
    reset() {
      since = seq;
    },
  };
}
