/** Public TypeScript API of the QuantBot lake package. */
export {
  computeMintBucket,
  computeWindowSlice,
  errorCodes,
  floorToInterval,
  intervalToSeconds,
  parseWindowSpec,
  probeClickhouse,
  verifyLakeDir,
} from '#native';
export type {
  ClickhouseConnection,
  ClickhouseServerInfo,
  LakeProgressEvent,
  LakeVerifyProblem,
  LakeVerifyReport,
  WindowSlice,
  WindowSpec,
} from '#native';
export { LAKE_ERROR_CODES, isLakeError, lakeError } from './errors.js';
export type { LakeError, LakeErrorCode } from './errors.js';
export {
  ClickHouseConnectionSchema,
  LakeExportResultSchema,
  LakeManifestSchema,
  LakeRunSliceExportConfigSchema,
  describeIssues,
} from './schemas.js';
export type { LakeExportResult, LakeManifest, LakeRunSliceExportConfig, LakeRunSliceExportConfigInput } from './schemas.js';
export { LakeExporterService, quietLogger } from './service.js';
export type { ExportCallOptions, LakeExporterServiceOptions, LakeLogger, LakeNative } from './service.js';
