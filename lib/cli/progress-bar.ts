/** A one-line progress bar on stderr, drawn only when stderr is a terminal: phase, mints, rows, bytes, elapsed
 * time, an estimate of the time left, and the corpus day. */
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

/** A progress bar: `update` is the export's `onProgress` (undefined when the stream is not a terminal), `clear`
 * erases the line so that a message can be printed in its place. */
export function progressBar(stream: NodeJS.WriteStream, now: () => number = Date.now) {
  const started = now();
  let drawn = false;
  const update = stream.isTTY
    ? (e: LakeProgressEvent) => {
        stream.write(`\r${progressLine(e, now() - started)}\x1b[K`);
        drawn = e.phase !== 'done';
        if (e.phase === 'done') stream.write('\n');
      }
    : undefined;
  const clear = () => {
    if (drawn) stream.write('\r\x1b[K');
    drawn = false;
  };
  return { update, clear };
}
