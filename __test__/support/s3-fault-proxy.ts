/**
 * An HTTP proxy in front of the S3 test server that fails a seeded share of requests the ways S3 and the
 * networks before it do: `503 SlowDown` (throttling), `500 InternalError`, a connection reset before the
 * request reaches the server, and a reset after the server acted on it (the answer is lost, the change is
 * made: the case a retried conditional write must recognise). Requests are forwarded untouched, Host
 * header included, so the client's signatures still hold.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { seededRandom } from './seeded-random.js';

/** What to inject; shares are of all requests, drawn from one seeded generator in arrival order. */
export interface S3FaultOptions {
  seed: number;
  /** Answered `503 SlowDown` without reaching the server. */
  slowDown?: number;
  /** Answered `500 InternalError` without reaching the server. */
  serverError?: number;
  /** Reset before the server sees the request. */
  resetBefore?: number;
  /** Forwarded, and the connection reset instead of the server's answer. */
  resetAfter?: number;
  /**
   * Requests whose answer is lost on purpose (forwarded, then reset): the first of each method, URL and kind of
   * condition (`If-None-Match`, `If-Match`, none) that matches.
   */
  loseAnswerOnce?: (req: { method: string; url: string; headers: IncomingMessage['headers'] }) => boolean;
  /** Requests refused outright with this status and S3 error code (e.g. 403 AccessDenied), every time. */
  refuse?: (req: { method: string; url: string }) => { status: number; code: string } | undefined;
}

/** What the proxy did. */
export interface S3FaultStats {
  requests: number;
  slowDown: number;
  serverError: number;
  resetBefore: number;
  resetAfter: number;
  lostOnPurpose: Array<{ method: string; url: string }>;
}

/** A running proxy. */
export interface S3FaultProxy {
  /** `http://127.0.0.1:<port>`, for `object_store.endpoint` or AWS_ENDPOINT_URL. */
  url: string;
  stats: S3FaultStats;
  close(): Promise<void>;
}

const xmlError = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function forward(upstream: URL, req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const out = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (res) => {
        readBody(res).then((b) => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: b }), reject);
      },
    );
    out.on('error', reject);
    out.end(body);
  });
}

/** Starts the proxy in front of `upstream` (the S3 server's URL). */
export async function startS3FaultProxy(upstream: string, options: S3FaultOptions): Promise<S3FaultProxy> {
  const target = new URL(upstream);
  const random = seededRandom(options.seed);
  const stats: S3FaultStats = { requests: 0, slowDown: 0, serverError: 0, resetBefore: 0, resetAfter: 0, lostOnPurpose: [] };
  const lostOnce = new Set<string>();
  const sockets = new Set<Socket>();
  const reset = (res: ServerResponse) => (res.socket as Socket | null)?.resetAndDestroy();

  const server = createServer((req, res) => {
    stats.requests++;
    const r = random();
    const { slowDown = 0, serverError = 0, resetBefore = 0, resetAfter = 0 } = options;
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const condition = req.headers['if-none-match'] !== undefined ? 'create' : req.headers['if-match'] !== undefined ? 'replace' : '';
    const key = `${method} ${url} ${condition}`;
    const onPurpose = options.loseAnswerOnce?.({ method, url, headers: req.headers }) === true && !lostOnce.has(key);
    const refused = options.refuse?.({ method, url: decodeURIComponent(url) });
    void readBody(req).then(async (body) => {
      if (refused) {
        res.writeHead(refused.status, { 'content-type': 'application/xml' }).end(xmlError(refused.code, 'Refused by the test proxy.'));
        return;
      }
      if (!onPurpose && r < slowDown) {
        stats.slowDown++;
        res.writeHead(503, { 'content-type': 'application/xml' }).end(xmlError('SlowDown', 'Please reduce your request rate.'));
        return;
      }
      if (!onPurpose && r < slowDown + serverError) {
        stats.serverError++;
        res.writeHead(500, { 'content-type': 'application/xml' }).end(xmlError('InternalError', 'We encountered an internal error. Please try again.'));
        return;
      }
      if (!onPurpose && r < slowDown + serverError + resetBefore) {
        stats.resetBefore++;
        reset(res);
        return;
      }
      const answer = await forward(target, req, body);
      if (onPurpose || r < slowDown + serverError + resetBefore + resetAfter) {
        if (onPurpose) {
          lostOnce.add(key);
          stats.lostOnPurpose.push({ method, url });
        } else stats.resetAfter++;
        reset(res);
        return;
      }
      res.writeHead(answer.status, answer.headers).end(answer.body);
    }).catch(() => reset(res));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
