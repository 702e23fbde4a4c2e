/** A one-line progress bar on stderr, drawn only when stderr is a terminal. */
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

/** Returns a progress callback for a TTY stream, or `undefined` when the stream is not one. */
export function progressBar(stream: NodeJS.WriteStream): ((e: LakeProgressEvent) => void) | undefined {
  if (!stream.isTTY) return undefined;
  return (e) => {
    const width = 30;
    const frac = e.mints_total ? e.mints_done / e.mints_total : 0;
    const filled = Math.round(frac * width);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    stream.write(`\r[${bar}] ${e.phase.padEnd(14)} ${e.mints_done}/${e.mints_total} mints  ${e.rows} rows  ${human(e.bytes)}\x1b[K`);
    if (e.phase === 'done') stream.write('\n');
  };
}
