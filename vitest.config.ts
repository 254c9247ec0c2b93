import { defineConfig } from "vitest/config";

// Timeouts: at least 3x the slowest test on a loaded 2-core machine. The slowest (bisect-cli's
// kill-and-resume search, ~75 s; bisect/calib searches 20-50 s) ran 157 s under load against
// the old 120 s limit.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 360_000,
    hookTimeout: 600_000,
    pool: "forks",
    maxWorkers: 2,
  },
});
