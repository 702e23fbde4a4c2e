// Prints vitest's JSON report as the plain "N passed, N failed, N skipped" line that CI can read,
// and exits non-zero when a test failed or none ran.
import { readFileSync } from 'node:fs';

const path = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(path, 'utf8'));
} catch (err) {
  console.error(`vitest-summary: cannot read ${path}: ${err.message}`);
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
const failed = report.numFailedTests ?? 0;
// A suite fails with its tests (each enclosing describe counts) or on its own (a file that does not load);
// said apart so that the count of failed tests stays the count of failed tests.
const failedSuites = report.numFailedTestSuites ?? 0;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`vitest: ${passed} passed, ${failed} failed, ${skipped} skipped${failedSuites ? ` (${failedSuites} suites failed)` : ''}`);
if (failed > 0 || failedSuites > 0 || passed === 0) process.exit(1);
