/**
 * The ONNX backend test data (Debian's libonnx-testdata) some tests read. On a fresh machine
 * without it those tests are skipped with a loud notice; under CI (CI=true) they run and fail.
 * TRT_DEBUG_ONNX_TESTDATA overrides the location (set it to a missing folder to check the skips).
 */
import * as fs from "node:fs";

export const ONNX_TESTDATA = process.env.TRT_DEBUG_ONNX_TESTDATA || "/usr/share/libonnx-testdata/data";
export const HAVE_TESTDATA = fs.existsSync(ONNX_TESTDATA);
export const IN_CI = process.env.CI === "true" || process.env.CI === "1";
/** Skip tests that need the data: only when it is missing and this is not CI. */
export const SKIP_TESTDATA = !HAVE_TESTDATA && !IN_CI;

if (!HAVE_TESTDATA) {
  console.error(
    `\n!!! libonnx-testdata is NOT installed (${ONNX_TESTDATA} missing): the tests that need it are ${IN_CI ? "FAILING (CI=true)" : "SKIPPED"}; apt-get install -y libonnx-testdata !!!\n`,
  );
}
