/** Error codes and the error type that every lake failure carries into JavaScript. */

/** Every stable `code` a lake error can have (docs/lake-format.md, "Errors"). */
export const LAKE_ERROR_CODES = [
  'INVALID_CONFIG',
  'INVALID_ALERTS',
  'CLICKHOUSE_UNREACHABLE',
  'CLICKHOUSE_TIMEOUT',
  'CLICKHOUSE_TLS',
  'CLICKHOUSE_AUTH',
  'CLICKHOUSE_QUERY',
  'CLICKHOUSE_SCHEMA',
  'IO',
  'RUN_EXISTS',
  'RUN_LOCKED',
  'CORPUS_STALE',
  'OBJECT_STORE_AUTH',
  'OBJECT_STORE_UNREACHABLE',
  'OBJECT_STORE',
  'CANCELLED',
  'INTERNAL',
  'ADDON_NOT_FOUND',
] as const;

/** A stable lake error code. */
export type LakeErrorCode = (typeof LAKE_ERROR_CODES)[number];

/** An `Error` with a stable lake `code`, as thrown by the addon and the service. */
export interface LakeError extends Error {
  code: LakeErrorCode;
}

/** True when `err` is an Error carrying one of the lake's codes. */
export function isLakeError(err: unknown): err is LakeError {
  const code: unknown = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  return typeof code === 'string' && (LAKE_ERROR_CODES as readonly string[]).includes(code);
}

/** Creates a lake error with a code and a message that says what to do. */
export function lakeError(code: LakeErrorCode, message: string): LakeError {
  return Object.assign(new Error(message), { code });
}
