// A TCP proxy that limits the bytes sent towards the server to RATE bytes per second over all its connections
// (a token bucket), so that a loopback S3 server behaves like one behind a real link: `node throttle-proxy.mjs
// <upstream host:port> <bytes per second>` prints the port it listens on and runs until killed.
import { connect, createServer } from 'node:net';
import { setTimeout } from 'node:timers';

const [upstream, rateText] = process.argv.slice(2);
const [host, port] = upstream.split(':');
const rate = Number(rateText);
// A tenth of a second of credit at most: bursts stay short, the average is the rate.
const burst = rate / 10;
let tokens = burst;
let last = process.hrtime.bigint();

function refill() {
  const now = process.hrtime.bigint();
  tokens = Math.min(burst, tokens + (Number(now - last) / 1e9) * rate);
  last = now;
}

const server = createServer((client) => {
  const up = connect(Number(port), host);
  client.on('data', (chunk) => {
    up.write(chunk);
    refill();
    tokens -= chunk.length;
    if (tokens < 0) {
      client.pause();
      setTimeout(() => client.resume(), (-tokens / rate) * 1000);
    }
  });
  up.pipe(client);
  client.on('end', () => up.end());
  for (const s of [client, up]) s.on('error', () => { client.destroy(); up.destroy(); });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
