/**
 * Small structural fixtures for the model loader and graph view: unsorted nodes, control
 * flow subgraphs with outer-scope references, unnamed nodes, external data, sequence and
 * optional values. Every one of them runs in onnxruntime-node (checked in
 * test/golden-models.test.ts).
 */
import { GraphBuilder, optionalType, sequenceType, tensorType } from "../../test/support/graph-builder.js";
import { type GeneratedModel, type ModelFacts, Rng } from "./common.js";

export interface NotTopoSortedFacts extends ModelFacts {
  /** Node names in a valid topological order (the file lists them in another order). */
  topoOrder: string[];
  /** Node names as listed in the file. */
  fileOrder: string[];
}

/** x[2,4] → a (Relu) → b (Add a+c) → c... listed in reverse order in the file. */
export function notTopoSorted(): GeneratedModel<NotTopoSortedFacts> {
  const b = new GraphBuilder("not_topo_sorted");
  const x = b.input("x", "float32", [2, 4]);
  const r = b.node("Relu", [x], { name: "relu" });
  const s = b.node("Sigmoid", [x], { name: "sigmoid" });
  const a = b.node("Add", [r, s], { name: "add" });
  const m = b.node("Mul", [a, b.initializer("two", "float32", [], [2])], { name: "mul" });
  const y = b.node("Sub", [m, r], { name: "sub" });
  b.output(y, "float32", [2, 4]);
  const topoOrder = b.nodeList.map((n) => n.name);
  b.nodeList.reverse();
  const fileOrder = b.nodeList.map((n) => n.name);
  const model = b.model({ opset: 17 });
  return {
    model,
    facts: {
      name: "not_topo_sorted",
      description: "Five nodes listed in reverse topological order. y = 2*(relu(x)+sigmoid(x)) - relu(x).",
      inputs: [{ name: "x", dtype: "float32", dims: [2, 4], valueRange: [-1, 1] }],
      outputs: [y],
      nodeCount: 5,
      topoOrder,
      fileOrder,
    },
  };
}

export interface ControlFlowFacts extends ModelFacts {
  /** Tensor of the main graph that the subgraph(s) read from the outer scope. */
  outerScopeTensor: string;
  /** Names of the nodes inside the subgraphs. */
  subgraphNodes: string[];
}

/**
 * y = sum(x) > 0 ? relu(x) * 2 : relu(x) - 1, via If. Both branches read the outer tensor
 * relu_output_0.
 */
export function withIf(): GeneratedModel<ControlFlowFacts> {
  const b = new GraphBuilder("with_if");
  const x = b.input("x", "float32", [2, 3]);
  const h = b.node("Relu", [x], { name: "relu" });
  const s = b.node("ReduceSum", [x], { name: "sum", attrs: { keepdims: 0 } });
  const c = b.node("Greater", [s, b.initializer("zero", "float32", [], [0])], { name: "positive" });
  const thenB = b.subgraph("then_branch");
  const t = thenB.node("Mul", [h, thenB.initializer("then/two", "float32", [], [2])], { name: "then/mul" });
  thenB.output(t, "float32", [2, 3]);
  const elseB = b.subgraph("else_branch");
  const e = elseB.node("Sub", [h, elseB.initializer("else/one", "float32", [], [1])], { name: "else/sub" });
  elseB.output(e, "float32", [2, 3]);
  const y = b.node("If", [c], {
    name: "if",
    outputs: ["y"],
    attrs: { then_branch: thenB.graph(), else_branch: elseB.graph() },
  });
  b.output(y, "float32", [2, 3]);
  const model = b.model({ opset: 17 });
  return {
    model,
    facts: {
      name: "with_if",
      description: "If on sum(x) > 0: then relu(x)*2, else relu(x)-1; both branches use the outer tensor relu_output_0.",
      inputs: [{ name: "x", dtype: "float32", dims: [2, 3], valueRange: [-1, 1] }],
      outputs: [y],
      nodeCount: 4,
      outerScopeTensor: h,
      subgraphNodes: ["then/mul", "else/sub"],
    },
  };
}

export interface LoopFacts extends ControlFlowFacts {
  tripCount: number;
}

/**
 * Loop 3 times: v ← v + relu(x) (relu(x) read from the outer scope), starting at v = x;
 * outputs the final v ("v_final" = x + 3·relu(x)) and the stacked per-iteration values
 * ("v_scan", [3,2,3]).
 */
export function withLoop(): GeneratedModel<LoopFacts> {
  const b = new GraphBuilder("with_loop");
  const x = b.input("x", "float32", [2, 3]);
  const h = b.node("Relu", [x], { name: "relu" });
  const trip = b.initializer("trip_count", "int64", [], [3]);
  const cond = b.initializer("cond_true", "bool", [], [true]);
  const body = b.subgraph("loop_body");
  body.input("iter", "int64", []);
  const cin = body.input("cond_in", "bool", []);
  const vin = body.input("v_in", "float32", [2, 3]);
  const cout = body.node("Identity", [cin], { name: "body/cond", outputs: ["cond_out"] });
  const vout = body.node("Add", [vin, h], { name: "body/add", outputs: ["v_out"] });
  const scan = body.node("Identity", [vout], { name: "body/scan", outputs: ["scan_out"] });
  body.output(cout, "bool", []);
  body.output(vout, "float32", [2, 3]);
  body.output(scan, "float32", [2, 3]);
  const [vFinal, vScan] = b.nodeN("Loop", [trip, cond, x], ["v_final", "v_scan"], {
    name: "loop",
    attrs: { body: body.graph() },
  });
  b.output(vFinal!, "float32", [2, 3]);
  b.output(vScan!, "float32", [3, 2, 3]);
  const model = b.model({ opset: 17 });
  return {
    model,
    facts: {
      name: "with_loop",
      description: "Loop of 3 iterations adding the outer tensor relu(x) to a carried value; final value and scan output.",
      inputs: [{ name: "x", dtype: "float32", dims: [2, 3], valueRange: [-1, 1] }],
      outputs: [vFinal!, vScan!],
      nodeCount: 2,
      outerScopeTensor: h,
      subgraphNodes: ["body/cond", "body/add", "body/scan"],
      tripCount: 3,
    },
  };
}

export interface UnnamedFacts extends ModelFacts {
  /** op_type of every node in file order; "" names for all but one. */
  opTypes: string[];
  names: string[];
}

/** y = (relu(relu(x)) + 1) * 3 + x with every node unnamed except "scale". */
export function unnamedNodes(): GeneratedModel<UnnamedFacts> {
  const b = new GraphBuilder("unnamed_nodes");
  const x = b.input("x", "float32", [2, 4]);
  let h = b.node("Relu", [x]);
  h = b.node("Relu", [h]);
  h = b.node("Add", [h, b.initializer("one", "float32", [], [1])]);
  h = b.node("Mul", [h, b.initializer("three", "float32", [], [3])], { name: "scale" });
  const y = b.node("Add", [h, x], { outputs: ["y"] });
  b.output(y, "float32", [2, 4]);
  const model = b.model({ opset: 17 });
  const nodes = model.graph!.node;
  return {
    model,
    facts: {
      name: "unnamed_nodes",
      description: "Five nodes, four without a name (two Relu, two Add): y = (relu(relu(x)) + 1) * 3 + x.",
      inputs: [{ name: "x", dtype: "float32", dims: [2, 4], valueRange: [-1, 1] }],
      outputs: [y],
      nodeCount: nodes.length,
      opTypes: nodes.map((n) => n.opType),
      names: nodes.map((n) => n.name),
    },
  };
}

export interface ExternalDataFacts extends ModelFacts {
  /** Pass to saveModel: the fixture is meant to be saved with external data. */
  externalData: { location: string; threshold: number };
  /** Initializers that go to the side file (≥ threshold bytes), and those kept inline. */
  externalTensors: string[];
  inlineTensors: string[];
}

/**
 * Two-layer MLP whose [64,64] weights (16 KiB each) and a 300k-element [600,500] weight
 * (1.2 MB: page-aligned in the side file) are meant to be saved as external data; biases
 * (< 1 KiB) stay inline. Save with `saveModel(model, "with_external_data.onnx",
 * { externalData: facts.externalData })`.
 */
export function withExternalData(): GeneratedModel<ExternalDataFacts> {
  const rng = new Rng("with_external_data");
  const b = new GraphBuilder("with_external_data");
  const x = b.input("x", "float32", [1, 64]);
  const w1 = b.initializer("fc1/weight", "float32", [64, 64], rng.normals(64 * 64, 0.125));
  const b1 = b.initializer("fc1/bias", "float32", [64], rng.normals(64, 0.1));
  let h = b.node("Gemm", [x, w1, b1], { name: "fc1" });
  h = b.node("Relu", [h], { name: "relu1" });
  const w2 = b.initializer("fc2/weight", "float32", [64, 600], rng.normals(64 * 600, 0.125));
  h = b.node("MatMul", [h, w2], { name: "fc2" });
  const w3 = b.initializer("fc3/weight", "float32", [600, 500], rng.normals(600 * 500, 0.04));
  h = b.node("MatMul", [h, w3], { name: "fc3" });
  const w4 = b.initializer("fc4/weight", "float32", [500, 8], rng.normals(500 * 8, 0.05));
  const b4 = b.initializer("fc4/bias", "float32", [8], rng.normals(8, 0.1));
  h = b.node("MatMul", [h, w4], { name: "fc4" });
  const y = b.node("Add", [h, b4], { name: "fc4/add" });
  b.output(y, "float32", [1, 8]);
  const model = b.model({ opset: 17 });
  return {
    model,
    facts: {
      name: "with_external_data",
      description: "MLP saved with its large weights (16 KB to 1.2 MB) in with_external_data.onnx.data; biases inline.",
      inputs: [{ name: "x", dtype: "float32", dims: [1, 64], valueRange: [0, 1] }],
      outputs: [y],
      nodeCount: model.graph!.node.length,
      externalData: { location: "with_external_data.onnx.data", threshold: 1024 },
      externalTensors: [w1, w2, w3, w4],
      inlineTensors: [b1, b4],
    },
  };
}

export interface OptSeqFacts extends ModelFacts {
  /** Intermediate values that are not tensors (sequence / optional), with their kind. */
  nonTensorValues: Record<string, "sequence" | "optional">;
}

/**
 * SequenceConstruct(relu(x), x*2) → SequenceAt(·, 1) = x*2; Optional(relu(x)) →
 * OptionalGetElement = relu(x), OptionalHasElement = true. Opset 18. The sequence and
 * optional values are intermediate only (value_info declares their types).
 */
export function optionalAndSequence(): GeneratedModel<OptSeqFacts> {
  const b = new GraphBuilder("optional_and_sequence");
  const x = b.input("x", "float32", [2, 3]);
  const r = b.node("Relu", [x], { name: "relu" });
  const d = b.node("Mul", [x, b.initializer("two", "float32", [], [2])], { name: "double" });
  const seq = b.node("SequenceConstruct", [r, d], { name: "seq", outputs: ["seq"] });
  const idx = b.initializer("one", "int64", [], [1]);
  const at = b.node("SequenceAt", [seq, idx], { name: "seq_at", outputs: ["y_seq_at"] });
  const opt = b.node("Optional", [r], { name: "opt", outputs: ["opt"] });
  const got = b.node("OptionalGetElement", [opt], { name: "opt_get", outputs: ["y_opt_get"] });
  const has = b.node("OptionalHasElement", [opt], { name: "opt_has", outputs: ["y_opt_has"] });
  b.valueInfo(seq, sequenceType(tensorType("float32", [2, 3])));
  b.valueInfo(opt, optionalType(tensorType("float32", [2, 3])));
  b.output(at, "float32", [2, 3]);
  b.output(got, "float32", [2, 3]);
  b.output(has, "bool", []);
  const model = b.model({ opset: 18, irVersion: 8 });
  return {
    model,
    facts: {
      name: "optional_and_sequence",
      description: "SequenceConstruct/SequenceAt and Optional/OptionalGetElement/OptionalHasElement with non-tensor intermediates.",
      inputs: [{ name: "x", dtype: "float32", dims: [2, 3], valueRange: [-1, 1] }],
      outputs: [at, got, has],
      nodeCount: model.graph!.node.length,
      nonTensorValues: { [seq]: "sequence", [opt]: "optional" },
    },
  };
}
