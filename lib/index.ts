/** Public TypeScript API of the QuantBot lake package. */
export {
  computeMintBucket,
  computeWindowSlice,
  errorCodes,
  floorToInterval,
  intervalToSeconds,
  parseWindowSpec,
  probeClickhouse,
} from '#native';
export type { ClickhouseConnection, ClickhouseServerInfo, WindowSlice, WindowSpec } from '#native';
export { LAKE_ERROR_CODES, isLakeError, lakeError } from './errors.js';
export type { LakeError, LakeErrorCode } from './errors.js';
