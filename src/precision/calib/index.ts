/** Calibration: streaming |x| histograms and the algorithms that pick an amax from them. */
export * from "./algorithms.js";
export * from "./histogram.js";
