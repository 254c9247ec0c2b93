/**
 * Strongly typed models (TensorRT 11): `convert` writes a precision assignment as a typed ONNX
 * model, and a typed model runs as typed (docs/precision.md "Strongly typed models").
 *
 * Checked here: the written model's types are consistent (one float type per node except Cast,
 * a Cast wherever the precision changes, reduced layers' weights stored reduced), onnxruntime
 * loads and runs it, running it as typed gives bit for bit the tensors of the plan-based
 * emulation of the same plan, and a model converted by an independent converter (fp16
 * everywhere, Casts at the I/O, as onnxconverter-common keep_io_types does) compared as typed
 * names the planted layer.
 */
import { releaseModelWeights } from "../src/onnx/external-weights.js";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { clone, create, toBinary } from "@bufbuild/protobuf";
import { AttributeProto_AttributeType, AttributeProtoSchema, ModelProtoSchema, NodeProtoSchema, ValueInfoProtoSchema, TensorProto_DataType, type ModelProto, type TensorProto } from "onnx-buf";
import { GraphBuilder, saveModel } from "./support/graph-builder.js";
import { decodeModel } from "../src/onnx/model.js";
import { hostToTensorProto, tensorProtoToHost } from "../src/onnx/tensor.js";
import { createSession, fromOrt, runSession, toOrt } from "../src/onnx/ort-session.js";
import { f32ToF16, floatValues } from "../src/numeric/index.js";
import { assignPrecisions, captureFilter, prepareModelFile, runCaptured } from "../src/runtime/capture-runs.js";
import { Executor } from "../src/runtime/executor.js";
import { parseLayerPrecisions } from "../src/precision/plan.js";
import { convertModel } from "../src/workflows/convert.js";
import { compareModel } from "../src/workflows/compare.js";
import { TYPED_COMPARE_NOTE, typedVerdictPrecision } from "../src/precision/typed.js";
import { defaultCompareOptions } from "../src/compare/tolerance.js";
import type { HostTensor, Precision } from "../src/core/host-tensor.js";
import type { CompareSummary } from "../src/compare/layer-compare.js";
import { convBn } from "../scripts/models/conv-bn.js";
import { ifAroundLoop, ifOverflow, loopAccumulate } from "../scripts/models/control-flow.js";
import { Rng } from "../scripts/models/common.js";
import { cli, expectUserError, GOLDEN, tmpDir } from "./helpers.js";

const F32 = TensorProto_DataType.FLOAT;
const F16 = TensorProto_DataType.FLOAT16;
const BF16 = TensorProto_DataType.BFLOAT16;
const FLOATS = new Set<number>([F32, F16, BF16]);
const LN = path.join(GOLDEN, "layernorm_overflow.onnx");
const LN_PINS = ["ln1/pow:fp32", "ln1/var:fp32"];
const CB_PINS = ["plant/pow:fp32", "plant/scale:fp32"];

let dir: string;
const f = (n: string) => path.join(dir, n);

function readModel(file: string): ModelProto {
  return decodeModel(fs.readFileSync(file), file);
}

/**
 * onnx-checker-like type semantics of a strongly typed model: every node's float inputs and
 * outputs share one type except Cast; a Cast changes the type (to its `to`); every float input
 * of a node in `reducedNodes` that is an initializer is stored in that node's type. Returns the
 * element type of every tensor.
 */
function checkTypes(m: ModelProto, reducedNodes: Set<string>, reducedType = F16): Map<string, number> {
  const g = m.graph!;
  const ty = new Map<string, number>();
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  for (const t of g.initializer) ty.set(t.name, t.dataType);
  for (const v of [...g.input, ...g.output, ...g.valueInfo]) if (v.type?.value.case === "tensorType") ty.set(v.name, v.type.value.value.elemType);
  for (const n of g.node) {
    for (const t of [...n.input, ...n.output]) if (t !== "") expect(ty.has(t), `tensor '${t}' of node '${n.name}' has a declared type`).toBe(true);
    const fin = n.input.filter((t) => t !== "" && FLOATS.has(ty.get(t)!)).map((t) => ty.get(t)!);
    const fout = n.output.filter((t) => t !== "" && FLOATS.has(ty.get(t)!)).map((t) => ty.get(t)!);
    if (n.opType === "Cast") {
      const to = Number(n.attribute.find((a) => a.name === "to")!.i);
      expect(fout, `Cast '${n.name}' output type`).toEqual([to]);
      expect(fin[0], `Cast '${n.name}' changes the type`).not.toBe(to);
      continue;
    }
    expect(new Set([...fin, ...fout]).size, `node '${n.name}' (${n.opType}) has one float type`).toBeLessThanOrEqual(1);
    if (reducedNodes.has(n.name)) {
      expect(fout.every((t) => t === reducedType), `outputs of reduced node '${n.name}'`).toBe(true);
      for (const t of n.input) if (inits.has(t) && FLOATS.has(ty.get(t)!)) expect(inits.get(t)!.dataType, `weight '${t}' of '${n.name}'`).toBe(reducedType);
    }
  }
  return ty;
}

/** Every captured tensor of one run (all layers), by tensor name. */
async function captureAll(file: string, inputs: HostTensor[], def: Precision, overrides: string[] = []): Promise<Map<string, HostTensor>> {
  const p = await prepareModelFile(file);
  const ps = assignPrecisions(p.model, def, parseLayerPrecisions(overrides));
  const exec = new Executor(p.model, p.types, { keepSessions: false });
  const out = new Map<string, HostTensor>();
  try {
    for await (const c of runCaptured(exec, ps, inputs, captureFilter(p.model, { kind: "all" }))) out.set(c.tensor.name, c.tensor);
  } finally {
    await exec.release();
    releaseModelWeights(p.model); // the lifted weights of an external-data model (a temporary file)
  }
  return out;
}

/** Same tensors, bit for bit (byte patterns, NaN included). */
function expectBitIdentical(plan: Map<string, HostTensor>, typed: Map<string, HostTensor>): number {
  let n = 0;
  for (const [name, t] of plan) {
    const u = typed.get(name);
    expect(u, `typed run has tensor '${name}'`).toBeDefined();
    expect(u!.dims).toEqual(t.dims);
    // a graph output declared fp16 comes as float16: compared by its (exact) float32 values
    const asF32 = t.dtype !== u!.dtype;
    const bytes = (h: HostTensor) => {
      const d = (asF32 ? floatValues(h)! : h.data) as Float32Array;
      return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    };
    if (asF32) expect([t.dtype, u!.dtype].sort()).toEqual(["float16", "float32"]);
    expect(bytes(u!).equals(bytes(t)), `tensor '${name}' bit-identical`).toBe(true);
    n++;
  }
  return n;
}

const lnInput = (): HostTensor => {
  const r = new Rng("typed/ln");
  return { name: "x", dtype: "float32", dims: [1, 8, 64], data: Float32Array.from({ length: 512 }, () => r.next()) };
};
const cbInput = (): HostTensor => {
  const r = new Rng("typed/cb");
  return { name: "x", dtype: "float32", dims: [1, 3, 8, 8], data: Float32Array.from({ length: 192 }, () => r.next()) };
};

/** onnxruntime loads the model and runs it; returns its graph outputs. */
async function ortRun(file: string, input: HostTensor, outputs: string[]): Promise<Map<string, HostTensor>> {
  const s = await createSession(fs.readFileSync(file), file);
  try {
    const r = await runSession(s, { [input.name]: toOrt(input) }, outputs, file);
    return new Map(outputs.map((o) => [o, fromOrt(o, r[o]!)]));
  } finally {
    await s.release();
  }
}

/**
 * An independent converter, as onnxconverter-common's convert_float_to_float16(keep_io_types=True):
 * every float tensor, weight and constant becomes fp16; Casts at the graph inputs and outputs.
 */
function fp16Everywhere(src: ModelProto): ModelProto {
  const m = clone(ModelProtoSchema, src);
  const g = m.graph!;
  const toF16 = (t: TensorProto): TensorProto => {
    if (t.dataType !== F32) return t;
    const h = tensorProtoToHost(t);
    return hostToTensorProto({ name: t.name, dtype: "float16", dims: h.dims, data: f32ToF16(floatValues(h)!) });
  };
  g.initializer = g.initializer.map(toF16);
  for (const v of g.valueInfo) if (v.type?.value.case === "tensorType" && v.type.value.value.elemType === F32) v.type.value.value.elemType = F16;
  const cast = (i: string, o: string, to: number) =>
    create(NodeProtoSchema, { name: `${o}_cast`, opType: "Cast", input: [i], output: [o], attribute: [create(AttributeProtoSchema, { name: "to", type: AttributeProto_AttributeType.INT, i: BigInt(to) })] });
  for (const n of g.node) {
    for (const a of n.attribute) {
      if (a.t) a.t = toF16(a.t);
      if (n.opType === "Cast" && a.name === "to" && Number(a.i) === F32) a.i = BigInt(F16);
    }
  }
  const head = g.input.filter((i) => i.type?.value.case === "tensorType" && i.type.value.value.elemType === F32).map((i) => {
    for (const n of g.node) n.input = n.input.map((t) => (t === i.name ? `${i.name}_fp16` : t));
    return cast(i.name, `${i.name}_fp16`, F16);
  });
  const tail = g.output.map((o) => {
    for (const n of g.node) {
      n.output = n.output.map((t) => (t === o.name ? `${o.name}_fp16` : t));
      n.input = n.input.map((t) => (t === o.name ? `${o.name}_fp16` : t));
    }
    return cast(`${o.name}_fp16`, o.name, F32);
  });
  g.node = [...head, ...g.node, ...tail];
  return m;
}

beforeAll(() => {
  dir = tmpDir("trtdbg-typed-");
  saveModel(convBn({ plant: "pow" }).model, f("cb.onnx"));
});

describe("convert: a plan written as a strongly typed model", () => {
  it("golden layernorm_overflow with ln1/pow, ln1/var in fp32: types consistent, loads in onnxruntime, runs bit-identical to the plan", async () => {
    const out = f("ln.typed.onnx");
    const r = await convertModel({ model: LN, output: out, precision: "fp16", layerPrecisions: parseLayerPrecisions(LN_PINS) });
    expect(r.converted).toBe(r.layers - 2);
    expect(r.precisions.filter((p) => p.precision === "fp32").map((p) => p.layer)).toEqual(["ln1/pow", "ln1/var"]);
    const m = readModel(out);
    const reduced = new Set(r.precisions.filter((p) => p.precision === "fp16").map((p) => p.layer));
    const ty = checkTypes(m, reduced);
    // Casts exactly at the boundaries: into and out of the fp32 pair, at the input and the output.
    expect(m.graph!.node.filter((n) => n.opType === "Cast").map((n) => n.name).sort()).toEqual(
      ["head/add_output_0__cast_to_fp32", "ln1/sub_output_0__cast_to_fp32", "ln1/var_output_0__cast_to_fp16", "x__cast_to_fp16"].sort(),
    );
    expect(ty.get("ln1/pow_output_0")).toBe(F32);
    expect(ty.get("ln1/sub_output_0")).toBe(F16);
    expect(m.graph!.input.map((i) => [i.name, ty.get(i.name)])).toEqual([["x", F32]]);
    expect(m.graph!.output.map((o) => [o.name, ty.get(o.name)])).toEqual([["head/add_output_0", F32]]);
    // original node names kept
    for (const l of r.precisions) expect(m.graph!.node.some((n) => n.name === l.layer)).toBe(true);

    const x = lnInput();
    const ortOut = await ortRun(out, x, ["head/add_output_0"]);
    expect(ortOut.get("head/add_output_0")!.dtype).toBe("float32");
    const plan = await captureAll(LN, [x], "fp16", LN_PINS);
    const typed = await captureAll(out, [x], "fp32");
    expect(expectBitIdentical(plan, typed)).toBe(plan.size);
    expect(plan.size).toBe(r.layers);
  });

  it("--bf16: bf16 tensors and weights, bit-identical to the bf16 plan", async () => {
    const out = f("ln.bf16.onnx");
    const r = await convertModel({ model: LN, output: out, precision: "bf16", layerPrecisions: parseLayerPrecisions(LN_PINS) });
    checkTypes(readModel(out), new Set(r.precisions.filter((p) => p.precision === "bf16").map((p) => p.layer)), BF16);
    // thresholds follow the declared types: a bf16 tensor at bf16's, an fp32 one at the coarsest reduced type
    const pm = (await prepareModelFile(out)).model;
    expect(typedVerdictPrecision(pm, "ln1/sub_output_0", "fp16")).toBe("bf16");
    expect(typedVerdictPrecision(pm, "ln1/pow_output_0", "fp16")).toBe("bf16");
    const p16 = (await prepareModelFile(f("ln.typed.onnx"))).model;
    expect(typedVerdictPrecision(p16, "ln1/sub_output_0", "bf16")).toBe("fp16");
    const x = lnInput();
    const plan = await captureAll(LN, [x], "bf16", LN_PINS);
    expect(expectBitIdentical(plan, await captureAll(out, [x], "fp32"))).toBe(plan.size);
  });

  it("conv net with BatchNormalization: written as trt-debug sees it (BN folded in fp32), bit-identical to the plan", async () => {
    const out = f("cb.typed.onnx");
    const r = await convertModel({ model: f("cb.onnx"), output: out, precision: "fp16", layerPrecisions: parseLayerPrecisions(CB_PINS) });
    const m = readModel(out);
    const reduced = new Set(r.precisions.filter((p) => p.precision === "fp16").map((p) => p.layer));
    expect(reduced.has("conv1")).toBe(true);
    checkTypes(m, reduced);
    // bn1/bn2 are folded into the convolutions' weights (stored fp16), no node of theirs is left
    expect(m.graph!.node.some((n) => n.name === "bn1" || n.name === "bn2")).toBe(false);
    const w = m.graph!.initializer.find((t) => t.name === m.graph!.node.find((n) => n.name === "conv1")!.input[1])!;
    expect(w.dataType).toBe(F16);
    const x = cbInput();
    await ortRun(out, x, ["fc_output_0"]);
    const plan = await captureAll(f("cb.onnx"), [x], "fp16", CB_PINS);
    const typed = await captureAll(out, [x], "fp32");
    expect(expectBitIdentical(plan, typed)).toBe(plan.size);
    // without the pins the planted overflow is there, as typed too
    const all16 = f("cb.all16.onnx");
    await convertModel({ model: f("cb.onnx"), output: all16, precision: "fp16" });
    const t16 = await captureAll(all16, [x], "fp32");
    expect(expectBitIdentical(await captureAll(f("cb.onnx"), [x], "fp16"), t16)).toBeGreaterThan(0);
    expect(Array.from(t16.get("plant/pow_output_0")!.data as Float32Array).some((v) => v === Infinity)).toBe(true);
  });

  it("a weight shared by an fp16 and an fp32 layer is duplicated; --io-types reduced types the graph I/O", async () => {
    const b = new GraphBuilder("shared");
    const x = b.input("x", "float32", [2, 4]);
    const r = new Rng("typed/shared");
    const w = b.initializer("W", "float32", [4, 4], Float32Array.from({ length: 16 }, () => r.next() * 3 - 1.5));
    const a1 = b.node("MatMul", [x, w], { name: "a", outputs: ["a_out"] });
    const a2 = b.node("MatMul", [a1, w], { name: "b", outputs: ["b_out"] });
    b.output(b.node("Add", [a2, a1], { name: "c", outputs: ["y"] }), "float32", [2, 4]);
    saveModel(b.model({ opset: 13 }), f("shared.onnx"));
    const out = f("shared.typed.onnx");
    const res = await convertModel({ model: f("shared.onnx"), output: out, precision: "fp16", layerPrecisions: parseLayerPrecisions(["b:fp32"]) });
    expect(res.duplicated_initializers).toEqual(["W__fp16"]);
    const m = readModel(out);
    expect(m.graph!.initializer.map((t) => [t.name, t.dataType]).sort()).toEqual([["W", F32], ["W__fp16", F16]]);
    checkTypes(m, new Set(["a", "c"]));
    const xin: HostTensor = { name: "x", dtype: "float32", dims: [2, 4], data: Float32Array.from({ length: 8 }, (_, i) => Math.sin(i) * 100) };
    expectBitIdentical(await captureAll(f("shared.onnx"), [xin], "fp16", ["b:fp32"]), await captureAll(out, [xin], "fp32"));

    const io = f("shared.io.onnx");
    await convertModel({ model: f("shared.onnx"), output: io, precision: "fp16", layerPrecisions: parseLayerPrecisions(["b:fp32"]), ioTypes: "reduced" });
    const mi = readModel(io);
    const ty = checkTypes(mi, new Set(["a", "c"]));
    expect([ty.get("x"), ty.get("y")]).toEqual([F16, F16]);
    const o = await ortRun(io, { name: "x", dtype: "float16", dims: [2, 4], data: f32ToF16(xin.data as Float32Array) }, ["y"]);
    expect(o.get("y")!.dtype).toBe("float16");
    // run as typed by trt-debug: fed and answering in fp16, as declared
    const typedIo = await captureAll(io, [{ ...xin, dtype: "float16", data: f32ToF16(xin.data as Float32Array) }], "fp32");
    expect(typedIo.get("y")!.dtype).toBe("float16");
    expectBitIdentical(await captureAll(f("shared.onnx"), [xin], "fp16", ["b:fp32"]), typedIo);
  });

  it("external data in, external data out (next to the output)", async () => {
    const b = new GraphBuilder("ext");
    const x = b.input("x", "float32", [2, 32]);
    const r0 = new Rng("typed/ext");
    const w = b.initializer("W", "float32", [32, 32], Float32Array.from({ length: 1024 }, () => r0.next() - 0.5));
    b.output(b.node("MatMul", [x, w], { name: "mm", outputs: ["y"] }), "float32", [2, 32]);
    saveModel(b.model({ opset: 13 }), f("ext.onnx"), { externalData: { location: "ext.weights", threshold: 16 } });
    const out = f("ext.typed.onnx");
    const r = await convertModel({ model: f("ext.onnx"), output: out, precision: "fp16" });
    expect(r.data).toBe(path.join(dir, "ext.typed.onnx.data"));
    expect(fs.existsSync(r.data!)).toBe(true);
    const m = readModel(out);
    // the 2 KiB fp16 weight goes to the side file (saveModel's threshold: 1 KiB)
    expect(m.graph!.initializer.map((t) => [t.name, t.dataType, t.externalData.find((e) => e.key === "location")?.value])).toEqual([["W", F16, "ext.typed.onnx.data"]]);
    const xin: HostTensor = { name: "x", dtype: "float32", dims: [2, 32], data: Float32Array.from({ length: 64 }, (_, i) => i / 3) };
    expectBitIdentical(await captureAll(f("ext.onnx"), [xin], "fp16"), await captureAll(out, [xin], "fp32"));
  });

  it("an If layer's bodies are converted in its precision; bit-identical to the plan's body emulation", async () => {
    saveModel(ifOverflow().model, f("if.onnx"));
    const x: HostTensor = { name: "x", dtype: "float32", dims: [1, 16], data: Float32Array.from({ length: 16 }, (_, i) => 0.05 * i) };
    for (const [label, pins] of [["fp16", [] as string[]], ["if32", ["vad_if:fp32"]]] as const) {
      const out = f(`if.${label}.onnx`);
      const r = await convertModel({ model: f("if.onnx"), output: out, precision: "fp16", layerPrecisions: parseLayerPrecisions([...pins]) });
      const m = readModel(out);
      const reduced = new Set(r.precisions.filter((p) => p.precision === "fp16").map((p) => p.layer));
      const ty = checkTypes(m, reduced);
      // the outer tensors the bodies read stay float32 under their names
      expect(["x", "body_w1", "body_w2", "else_w"].map((t) => ty.get(t))).toEqual([F32, F32, F32, F32]);
      const ifNode = m.graph!.node.find((n) => n.name === "vad_if")!;
      const then = ifNode.attribute.find((a) => a.name === "then_branch")!.g!;
      if (pins.length) {
        expect(then.node.map((n) => n.name)).toEqual(["body_mm1", "body_scale", "body_mm2"]);
      } else {
        // body: x and the weights cast to fp16 at its start, its initializer stored fp16, its output fp16
        checkTypes({ ...m, graph: { ...then, valueInfo: [...then.valueInfo, ...m.graph!.input, ...m.graph!.initializer.map((t) => create(ValueInfoProtoSchema, { name: t.name, type: { value: { case: "tensorType", value: { elemType: t.dataType } } } as never }))] } } as ModelProto, new Set(["body_mm1", "body_scale", "body_mm2"]));
        expect(then.initializer.map((t) => [t.name, t.dataType])).toEqual([["body_k", F16]]);
        expect(then.output[0]!.type!.value.value!.elemType).toBe(F16);
      }
      await ortRun(out, x, ["y"]);
      const plan = await captureAll(f("if.onnx"), [x], "fp16", [...pins]);
      expect(expectBitIdentical(plan, await captureAll(out, [x], "fp32"))).toBe(plan.size);
    }
  });

  it("Loop (carried values) and If around a Loop (nested bodies): bodies converted, bit-identical to the plan", async () => {
    const x: HostTensor = { name: "x", dtype: "float32", dims: [8], data: Float32Array.from({ length: 8 }, (_, i) => 0.3 + 0.77 * i) };
    for (const [name, model] of [["loop", loopAccumulate(5, 1.37, 0.011)], ["if_loop", ifAroundLoop(5, 1.37, 0.011)]] as const) {
      saveModel(model, f(`${name}.onnx`));
      const out = f(`${name}.typed.onnx`);
      await convertModel({ model: f(`${name}.onnx`), output: out, precision: "fp16" });
      const p = await prepareModelFile(f(`${name}.onnx`));
      const inputs: HostTensor[] = p.inputs.map((i) => (i.name === "x" ? x : { name: i.name, dtype: "bool", dims: [], data: new Uint8Array([1]) }));
      const plan = await captureAll(f(`${name}.onnx`), inputs, "fp16");
      expect(expectBitIdentical(plan, await captureAll(out, inputs, "fp32")), name).toBe(plan.size);
      await (await createSession(fs.readFileSync(out), out)).release(); // onnxruntime loads it
    }
    const loop = readModel(f("loop.typed.onnx")).graph!.node.find((n) => n.opType === "Loop")!;
    const body = loop.attribute.find((a) => a.name === "body")!.g!;
    expect(body.input.map((v) => v.type!.value.value!.elemType)).toEqual([TensorProto_DataType.INT64, TensorProto_DataType.BOOL, F16]);
    expect(body.output.map((v) => v.type!.value.value!.elemType)).toEqual([TensorProto_DataType.BOOL, F16]);
    expect(body.node.filter((n) => n.opType === "Cast").map((n) => n.name).sort()).toEqual(["acc_loop/body/loop_c__cast_to_fp16", "acc_loop/body/loop_d__cast_to_fp16"]);
  });

  it("CLI: prints converted X/Y layers; one-line errors for --int8, --fp8, --fp16 with --bf16, no precision", async () => {
    const out = f("cli.typed.onnx");
    const r = await cli("convert", LN, "--fp16", "--layer-precisions", ...LN_PINS, "-o", out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^converted 11\/13 layers to fp16: 4 Casts, 0 duplicated weights; wrote /);
    expectUserError(await cli("convert", LN, "--int8", "-o", out), "--int8", "--calibration-cache");
    expectUserError(await cli("convert", LN, "--fp8", "-o", out), "convert --fp8", "--calibration-cache");
    expectUserError(await cli("convert", LN, "--fp16", "--bf16", "-o", out), "--fp16 and --bf16");
    expectUserError(await cli("convert", LN, "-o", out), "--fp16 or --bf16");
    expectUserError(await cli("convert", LN, "--fp16", "-o", LN), "the same file as the model");
    expectUserError(await cli("convert", out, "--fp16", "-o", f("again.onnx")), "already strongly typed");
  });
});

describe("a typed model runs as typed", () => {
  let indep: string;
  beforeAll(() => {
    indep = f("ln.fp16-everywhere.onnx");
    const m = fp16Everywhere(readModel(LN));
    fs.writeFileSync(indep, toBinary(ModelProtoSchema, m));
  });

  it("an independently converted model (fp16 everywhere, Casts at the I/O) compared as typed names the planted layer", async () => {
    const s: CompareSummary = await compareModel({ model: indep, candidate: "fp16", compare: defaultCompareOptions() });
    expect(s.passed).toBe(false);
    expect(s.first_failing_layer).toBe("ln1/pow");
    // the reference is the lifted graph in fp32 (finite), the candidate the typed graph
    const pow = s.layers.find((l) => l.layer === "ln1/pow")!;
    expect(pow.precision).toBe("fp16");
    expect(pow.metrics.new_nonfinite).toBeGreaterThan(0);
    expect(s.notes).toContain(TYPED_COMPARE_NOTE);
    // onnxruntime's own CPU run of the same fp16 file hides the overflow (its fp16 path computes
    // the LayerNorm chain in fp32): the typed semantics do not come from onnxruntime's kernels
    const own = (await ortRun(indep, lnInput(), ["head/add_output_0"])).get("head/add_output_0")!;
    expect(Array.from(own.data as Float32Array).every(Number.isFinite)).toBe(true);
    // the CLI needs no precision flag for a typed model
    const j = f("indep.json");
    const r = await cli("compare", indep, "--json", j);
    expect(r.code).toBe(1);
    expect((JSON.parse(fs.readFileSync(j, "utf8")) as CompareSummary).first_failing_layer).toBe("ln1/pow");
  });

  it("its typed run equals the plan-based emulation of all-fp16 on the same graph, tensor for tensor", async () => {
    const x = lnInput();
    const typed = await captureAll(indep, [x], "fp32");
    const plan = await captureAll(LN, [x], "fp16");
    // the independent converter rounds weights to fp16 exactly as the emulation does
    let same = 0;
    for (const [name, t] of plan) {
      const u = typed.get(name);
      if (!u) continue;
      expect(Buffer.from((u.data as Float32Array).buffer).equals(Buffer.from((t.data as Float32Array).buffer)), name).toBe(true);
      same++;
    }
    expect(same).toBe(plan.size); // the graph output too: the converter's Cast back to fp32 keeps its name
  });

  it("bisect on the typed model pins the planted layers (the typed precisions are its starting point)", async () => {
    const plan = f("indep.plan.json");
    const r = await cli("bisect", indep, "--fp16", "-o", plan, "-q");
    expect(r.code).toBe(0);
    const p = JSON.parse(fs.readFileSync(plan, "utf8")) as { meta: { pinned: string[] } };
    expect(p.meta.pinned.sort()).toEqual(["ln1/pow", "ln1/var"]);
  });

  it("run and validate without a precision flag run it as typed, labelled by its reduced type", async () => {
    const r = await cli("validate", indep);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("first failing layer: ln1/pow");
    const j = f("indep.run.json");
    expect((await cli("run", indep, "--mark-all", "--json", j, "-q")).code).toBe(0);
    const run = JSON.parse(fs.readFileSync(j, "utf8")) as { runs: { precision: string; first_failing_layer: string | null }[] };
    expect(run.runs.map((x) => [x.precision, x.first_failing_layer])).toEqual([["fp16", "ln1/pow"]]);
  });
});
