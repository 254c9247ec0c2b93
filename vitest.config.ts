import { defineConfig } from "vitest/config";

// Timeouts: at least 3x the slowest test on a loaded 2-core machine. The slowest (bisect's
// kill-and-resume search: 74 s idle, 92 s loaded, once 157 s under heavy load against the old
// 120 s limit; other bisect/calib searches 20-50 s; conformance 27 s of its own 600 s).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 480_000,
    hookTimeout: 600_000,
    pool: "forks",
    maxWorkers: 2,
  },
});
