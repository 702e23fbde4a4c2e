/** Public TypeScript API of the QuantBot lake package. */
export {
  computeMintBucket,
  computeWindowSlice,
  configFacts,
  corpusStatus,
  exportCorpus,
  exportRunSlices,
  errorCodes,
  floorToInterval,
  intervalToSeconds,
  parseWindowSpec,
  probeClickhouse,
  verifyLakeDir,
} from '#native';
export type {
  ClickhouseConnection,
  LakeCorpusDay,
  LakeCorpusDayStatus,
  ClickhouseServerInfo,
  LakeChoice,
  LakeConfigFacts,
  LakeWholeRange,
  LakeProgressEvent,
  LakeVerifyProblem,
  LakeVerifyReport,
  WindowSlice,
  WindowSpec,
} from '#native';
export { LAKE_ERROR_CODES, isLakeError, lakeError } from './errors.js';
export type { LakeError, LakeErrorCode } from './errors.js';
export {
  CONFIG_FACTS,
  ClickHouseConnectionSchema,
  LakeCorpusExportConfigSchema,
  LakeCorpusExportResultSchema,
  LakeCorpusStatusSchema,
  LakeExportResultSchema,
  LakeManifestSchema,
  LakeRunSliceExportConfigSchema,
  describeIssues,
} from './schemas.js';
export type {
  LakeCorpusExportConfig,
  LakeCorpusExportConfigInput,
  LakeCorpusExportResult,
  LakeCorpusStatus,
  LakeExportResult,
  LakeManifest,
  LakeRunSliceExportConfig,
  LakeRunSliceExportConfigInput,
} from './schemas.js';
export { LakeExporterService, quietLogger } from './service.js';
export type { ExportCallOptions, LakeExporterServiceOptions, LakeLogger, LakeNative } from './service.js';
