/**
 * The one PRNG for generated fixtures (tests, fuzzer): the model generators' Rng
 * (scripts/models/common.ts, sfc32 seeded through splitmix32), as a stream of uniforms in
 * [0, 1). Inputs trt-debug itself generates use src/data/rng.ts (documented in docs/inputs.md).
 */
import { Rng } from "../../scripts/models/common.js";

/** Uniform in [0, 1), deterministic for `seed`. */
export function fixtureRandom(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}
