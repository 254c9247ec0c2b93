/** Commands registered by later features (calibration, bisection). */
import type { Argv } from "yargs";
import type { Cli } from "./main.js";

export function registerExtraCommands(_y: Argv, _cli: Cli): void {}
