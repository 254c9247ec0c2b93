/**
 * A model has something to judge only when the graph declares outputs and layers produce them
 * (docs/cli.md, "Exit codes"): otherwise a comparison or NaN/Inf check covers nothing and
 * would report PASSED. Such models are user errors (exit 2).
 */
import { UserError } from "../core/errors.js";

interface GraphLike {
  layers: readonly { outputs: readonly string[] }[];
  outputs: readonly { name: string }[];
  inputs: readonly { name: string }[];
  initializers: ReadonlyMap<string, unknown>;
}

/** Throws a UserError unless at least one declared graph output is produced by a layer. */
export function checkJudgeableOutputs(model: string, g: GraphLike): void {
  if (g.outputs.length === 0) throw new UserError(`${model}: the graph declares no output, so there is nothing to judge; list the model's outputs in graph.output`);
  const produced = new Set(g.layers.flatMap((l) => l.outputs));
  const inputs = new Set(g.inputs.map((i) => i.name));
  for (const o of g.outputs) {
    if (produced.has(o.name) || inputs.has(o.name) || g.initializers.has(o.name)) continue;
    throw new UserError(`${model}: graph output '${o.name}' is produced by no node, input or initializer; the model is invalid (fix graph.output)`);
  }
  if (!g.outputs.some((o) => produced.has(o.name))) {
    throw new UserError(`${model}: no layer produces a graph output (${g.outputs.map((o) => `'${o.name}'`).join(", ")} ${g.outputs.length === 1 ? "is a graph input or initializer" : "are graph inputs or initializers"}), so there is nothing to judge`);
  }
}
