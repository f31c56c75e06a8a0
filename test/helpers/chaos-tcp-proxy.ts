/**
 * A TCP proxy (plain node:net) that can be switched to a black hole: every byte in both directions
 * is read and thrown away, and nothing is closed, which is how a half-open connection looks to
 * both ends (a network path that silently drops packets, a server host that vanished). The kernel
 * still acknowledges what is sent, so neither end's TCP stack ever notices: only the application's
 * own timeouts can.
 *
 *   const proxy = await startTcpProxy({ host: '127.0.0.1', port: 5432 });
 *   proxy.dropTraffic();   // connections go silent, new ones connect but never get an answer
 *   proxy.passTraffic();   // new connections work again
 *   await proxy.close();
 *
 * A connection one end closed while traffic was dropped is torn down on the other end when traffic
 * passes again, as the peer's reset would do once the network heals.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  dropTraffic(): void;
  passTraffic(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  /** One end closed while traffic was dropped: the other learns of it when traffic passes. */
  severed: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let dropping = false;

  const tearDown = (pair: Pair) => {
    pairs.delete(pair);
    pair.client.destroy();
    pair.upstream.destroy();
  };

  const forward = (pair: Pair, from: Socket, to: Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (!dropping && !to.destroyed) to.write(chunk);
    });
    from.on('close', () => {
      if (dropping) pair.severed = true;
      else tearDown(pair);
    });
    from.on('error', () => {});
  };

  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    const pair: Pair = { client, upstream, severed: false };
    pairs.add(pair);
    forward(pair, client, upstream);
    forward(pair, upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('the proxy has no port');

  return {
    port: address.port,
    dropTraffic() {
      dropping = true;
    },
    passTraffic() {
      dropping = false;
      for (const pair of [...pairs]) if (pair.severed) tearDown(pair);
    },
    async close() {
      for (const pair of [...pairs]) tearDown(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
