/** Calibration workflows as a library (no printing): data sources, statistics, build, check. */
export * from "./data.js";
export * from "./collect.js";
export * from "./build.js";
export * from "./check.js";
