/** Commands registered by later features (calibration, bisection). */
import type { Argv } from "yargs";
import type { Cli } from "./main.js";
import { registerBisect } from "./bisect.js";
import { registerCalib } from "./calib.js";

export function registerExtraCommands(_y: Argv, _cli: Cli): void {
  registerBisect(_y, _cli);
  registerCalib(_y, _cli);
}
