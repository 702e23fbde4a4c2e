/** A one-line progress bar on stderr, drawn only when stderr is a terminal: phase, mints, rows, bytes, elapsed
 * time, an estimate of the time left, and the corpus day. A retry of a ClickHouse request is one line of its own,
 * terminal or not. */
import type { LakeProgressEvent } from '#native';

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** `1:05`, `12:00:03`. */
export function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const hms = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const [h, m, sec] = hms.map((n) => String(n).padStart(2, '0'));
  return hms[0] ? `${Number(h)}:${m}:${sec}` : `${Number(m)}:${sec}`;
}

/** The line for one event, `elapsedMs` after the start. */
export function progressLine(e: LakeProgressEvent, elapsedMs: number): string {
  const width = 24;
  const frac = e.mints_total ? Math.min(1, e.mints_done / e.mints_total) : 0;
  const filled = Math.round(frac * width);
  const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
  const mints = e.mints_total ? `${e.mints_done}/${e.mints_total} mints` : `${e.mints_done} mints`;
  const eta = e.mints_total && e.mints_done && e.phase === 'exporting' ? `  ~${clock((elapsedMs * (e.mints_total - e.mints_done)) / e.mints_done)} left` : '';
  const day = e.day ? `  day ${e.day} (${e.days_done + 1}/${e.days_total})` : '';
  return `[${bar}] ${e.phase.padEnd(9)} ${mints}  ${e.rows} rows  ${human(e.bytes)}  ${clock(elapsedMs)}${eta}${day}`;
}

/** What failed, as the retry line says it, by server. */
const RETRY_CAUSES: Record<string, Record<string, string>> = {
  clickhouse: {
    unreachable: 'ClickHouse cannot be reached',
    connection_lost: 'connection to ClickHouse lost',
    timeout: 'ClickHouse went silent',
    server_busy: 'ClickHouse is busy or restarting',
    gateway: 'the proxy in front of ClickHouse failed',
  },
  object_store: {
    unreachable: 'the object store cannot be reached',
    connection_lost: 'connection to the object store lost',
    timeout: 'the object store went silent',
    server_busy: 'the object store asks to slow down',
    gateway: 'the object store failed (5xx)',
  },
};

/** `1.2M`, `35k`, `812`. */
function count(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`;
  return String(n);
}

/** The line for a retry event: `connection to ClickHouse lost after 1.2M rows; retrying in 2 s, retry 2 of 5`. */
export function retryLine(e: LakeProgressEvent): string | undefined {
  const r = e.retry;
  if (!r) return undefined;
  const after = e.rows ? ` after ${count(e.rows)} rows` : '';
  const wait = r.wait_ms < 1000 ? `${r.wait_ms} ms` : `${(r.wait_ms / 1000).toFixed(1).replace(/\.0$/, '')} s`;
  const cause = RETRY_CAUSES[r.server]?.[r.cause] ?? `${r.server}: ${r.cause}`;
  if (r.server !== 'clickhouse') return `${cause}; retrying in ${wait}, retry ${r.attempt} of ${r.retries}`;
  return `${cause}${after}; retrying in ${wait}, retry ${r.attempt} of ${r.retries}`;
}

/** A progress bar: `update` is the export's `onProgress`; `clear` erases the bar so that a message can be printed
 * in its place. The bar is drawn only on a terminal; retry lines always. */
export function progressBar(stream: NodeJS.WriteStream, now: () => number = Date.now) {
  const started = now();
  let drawn = false;
  const clear = () => {
    if (drawn) stream.write('\r\x1b[K');
    drawn = false;
  };
  const update = (e: LakeProgressEvent) => {
    const retry = retryLine(e);
    if (retry) {
      clear();
      stream.write(`quantbot lake: ${retry}\n`);
    }
    if (!stream.isTTY) return;
    stream.write(`\r${progressLine(e, now() - started)}\x1b[K`);
    drawn = e.phase !== 'done';
    if (e.phase === 'done') stream.write('\n');
  };
  return { update, clear };
}
