/** A TCP proxy between the exporter and the test ClickHouse that breaks things on purpose, as a load balancer, a
 * proxy or a flaky network does: it cuts answers at a byte offset drawn from a seeded generator, refuses
 * connections for a while, and stalls an answer. Everything else passes byte for byte. */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { seededRandom } from './seeded-random.js';

/** What to break. Connections are numbered from 1 in the order they are accepted. */
export interface FaultPlan {
  /** Seed of the generator that draws which connections are cut and where. */
  seed: number;
  /** Share of connections whose answer is cut (0..1), while cuts are left. */
  cutShare?: number;
  /** At most this many cuts in all, so that a test's export always gets through in the end. */
  maxCuts?: number;
  /** A cut comes after this many answer bytes at most (drawn uniformly from 1..cutWithin). */
  cutWithin?: number;
  /** Connections (by number) whose answer stops for `stallMs` after its first bytes. */
  stall?: { connections: number[]; ms: number };
}

/** What the proxy did. */
export interface FaultStats {
  connections: number;
  /** HTTP requests seen going to the server. */
  requests: number;
  cut: number;
  stalled: number;
}

/** A running proxy: its port, what it did, a way to refuse connections for a while, and `close`. */
export interface FaultProxy {
  port: number;
  stats: FaultStats;
  /** Stops listening (connections are refused) for `ms`, then listens on the same port again. */
  refuseFor(ms: number): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultProxy(target: URL, plan: FaultPlan): Promise<FaultProxy> {
  const random = seededRandom(plan.seed);
  const stats: FaultStats = { connections: 0, requests: 0, cut: 0, stalled: 0 };
  const open = new Set<Socket>();
  const onConnection = (client: Socket) => {
    const n = ++stats.connections;
    const upstream = connect(Number(target.port), target.hostname);
    open.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    // Request lines, counted across chunk boundaries (the end of the previous chunk is kept).
    let tail = '';
    client.on('data', (chunk: Buffer) => {
      const text = tail + chunk.toString('latin1');
      for (const m of text.matchAll(/(?:GET|POST) \/\S* HTTP\/1\.[01]\r\n/g)) {
        if (m.index + m[0].length > tail.length) stats.requests++;
      }
      tail = text.slice(-64);
    });

    const cutHere = stats.cut < (plan.maxCuts ?? Infinity) && random() < (plan.cutShare ?? 0);
    const cutAt = cutHere ? 1 + Math.floor(random() * (plan.cutWithin ?? 100_000)) : Infinity;
    if (cutHere) stats.cut++;
    const stallMs = plan.stall?.connections.includes(n) ? plan.stall.ms : 0;
    if (stallMs) stats.stalled++;
    let sent = 0;
    let stallUntil = 0;
    upstream.on('data', (chunk: Buffer) => {
      if (sent + chunk.length >= cutAt) {
        client.write(chunk.subarray(0, cutAt - sent), () => end());
        upstream.pause();
        sent = cutAt;
        return;
      }
      if (sent === 0 && stallMs) {
        // Hold the first bytes of the answer: the client waits for them past its receive timeout.
        stallUntil = Date.now() + stallMs;
        upstream.pause();
        sent += chunk.length;
        setTimeout(() => {
          if (!client.destroyed) client.write(chunk);
          upstream.resume();
        }, stallMs);
        return;
      }
      sent += chunk.length;
      if (!client.write(chunk)) upstream.pause();
    });
    client.on('drain', () => {
      if (sent < cutAt && Date.now() >= stallUntil) upstream.resume();
    });
  };

  let server: Server = createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer(onConnection);
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
  return {
    port,
    stats,
    async refuseFor(ms: number) {
      // The listening socket closes at once; connections already open go on (their close ends the callback).
      server.close();
      await new Promise((resolve) => setTimeout(resolve, ms));
      await listen();
    },
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
