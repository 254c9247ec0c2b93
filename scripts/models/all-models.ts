/** All deterministic model generators (see each file for the plant and its facts). */
export * from "./common.js";
export { layernormOverflow, type LayernormOverflowFacts } from "./layernorm-overflow.js";
export { expOverflow, type ExpOverflowFacts } from "./exp-overflow.js";
export { underflow, type UnderflowFacts } from "./underflow.js";
export { matmulConsumer, type MatmulConsumerFacts } from "./matmul-consumer.js";
export {
  deepMlpWithCulprits,
  DEFAULT_DEEP_PLANTS,
  type DeepCulpritFacts,
  type DeepCulpritKind,
  type DeepMlpFacts,
  type DeepPlant,
} from "./deep-mlp.js";
export { benchModel, type BenchFacts, type BenchOptions } from "./bench.js";
export { outlierActivation, type OutlierFacts } from "./outlier-activation.js";
export * from "./fixtures.js";

import { expOverflow } from "./exp-overflow.js";
import { layernormOverflow } from "./layernorm-overflow.js";
import { matmulConsumer } from "./matmul-consumer.js";
import { underflow } from "./underflow.js";
import type { GeneratedModel } from "./common.js";

/** The generators whose output is checked in under golden/ (file stem → generator). */
export const GOLDEN_GENERATORS: Readonly<Record<string, () => GeneratedModel>> = {
  layernorm_overflow: () => layernormOverflow(),
  exp_overflow: () => expOverflow(),
  underflow: () => underflow(),
  matmul_consumer: () => matmulConsumer(),
};
export { dbDetector, type DbDetectorFacts, type DbDetectorOptions } from "./db-detector.js";
