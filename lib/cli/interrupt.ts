/** Ctrl-C and SIGTERM during an export: the first one cancels it (the export removes its staging directory and
 * publishes nothing), a second one quits at once. */

/** Exit status after a signal, as shells report it: 128 + the signal's number. */
export const SIGNAL_EXIT: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

/** Watches SIGINT and SIGTERM while an export runs. */
export interface Interrupt {
  /** Aborted by the first signal. */
  signal: AbortSignal;
  /** The first signal received, if any. */
  received(): 'SIGINT' | 'SIGTERM' | undefined;
  /** Stops watching (restores Node's default handling). */
  dispose(): void;
}

/** Starts watching; `say` tells the user what is happening. */
export function watchInterrupts(say: (line: string) => void): Interrupt {
  const controller = new AbortController();
  let first: 'SIGINT' | 'SIGTERM' | undefined;
  const on = (sig: 'SIGINT' | 'SIGTERM') => () => {
    if (first) process.exit(SIGNAL_EXIT[first]);
    first = sig;
    say(`stopping the export (${sig === 'SIGINT' ? 'Ctrl-C' : sig}); press Ctrl-C again to quit at once`);
    controller.abort();
  };
  const handlers = { SIGINT: on('SIGINT'), SIGTERM: on('SIGTERM') };
  process.on('SIGINT', handlers.SIGINT);
  process.on('SIGTERM', handlers.SIGTERM);
  return {
    signal: controller.signal,
    received: () => first,
    dispose: () => {
      process.off('SIGINT', handlers.SIGINT);
      process.off('SIGTERM', handlers.SIGTERM);
    },
  };
}
