/** Capturing thrown and rejected errors so tests can assert on `code` and `message`. */

/** An error as the addon and the service throw it. */
export type CodedError = Error & { code?: string };

/** The error a promise rejects with; fails the test when it resolves instead. */
export async function rejection(promise: Promise<unknown>): Promise<CodedError> {
  try {
    await promise;
  } catch (err) {
    return err as CodedError;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** The error a function throws; fails the test when it returns instead. */
export function thrown(fn: () => unknown): CodedError {
  try {
    fn();
  } catch (err) {
    return err as CodedError;
  }
  throw new Error('expected a throw, but the call returned');
}
