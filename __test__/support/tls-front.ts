/** A TLS front for the test ClickHouse: terminates HTTPS with a given certificate and passes the bytes to the
 * server's plain HTTP port, as a load balancer or stunnel in front of ClickHouse does. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer } from 'node:tls';

/** A self-signed certificate made the way ClickHouse's config comments and many guides make it: one
 * `openssl req -x509` command (with OpenSSL 3 it says CA:TRUE). Returns the PEM files' paths. */
export function selfSignedCertificate(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-keyout', key, '-out', cert], {
    stdio: 'ignore',
  });
  return { cert, key };
}

/** Starts the front on a free loopback port; `close` stops it. */
export async function startTlsFront(files: { cert: string; key: string }, target: URL): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer({ cert: readFileSync(files.cert), key: readFileSync(files.key) }, (client) => {
    const upstream = connect(Number(target.port), target.hostname);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
  });
  // A client that refuses the certificate aborts the handshake: not the front's failure.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
