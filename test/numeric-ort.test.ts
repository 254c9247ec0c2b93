/**
 * Bit-exactness of the numeric core against onnxruntime: tiny ONNX models (Cast to
 * FLOAT16/BFLOAT16/FLOAT8E4M3FN/FLOAT8E5M2 with and without saturate, QuantizeLinear /
 * DequantizeLinear at opsets 13/19/21, per tensor and per axis) built here with onnx-buf, run
 * with onnxruntime-node, compared bit for bit with both implementations. bfloat16/float8
 * outputs cannot be fetched from onnxruntime-node, so those graphs Cast back to float.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  TensorProto_DataType as DT,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type NodeProto,
  type TensorProto,
} from "onnx-buf";
import ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nativeAddon, nativeImpl, nativeUnavailableReason, tsImpl, type NumericImpl } from "../src/numeric/index.js";
import { fixtureRandom } from "./support/random.js";

// ---- subjects (same as numeric.test.ts) -----------------------------------------------------

const IN_CI = !!process.env.CI && !["0", "false"].includes(process.env.CI);

const NATIVE = nativeImpl();
interface Subject {
  name: string;
  impl: NumericImpl;
  simd?: "scalar" | "best";
}
const SUBJECTS: Subject[] = [{ name: "typescript", impl: tsImpl }];
if (NATIVE) {
  SUBJECTS.push({ name: "native", impl: NATIVE, simd: "best" });
  SUBJECTS.push({ name: "native-scalar", impl: NATIVE, simd: "scalar" });
} else {
  console.error(`\n${"!".repeat(100)}\n!! native numeric addon NOT BUILT (${nativeUnavailableReason()}): only the TypeScript kernels are checked against onnxruntime\n${"!".repeat(100)}\n`);
}

describe("native addon present for the onnxruntime comparison", () => {
  it("is built (required under CI=true)", () => {
    if (!NATIVE && IN_CI) throw new Error(`native addon missing under CI: ${nativeUnavailableReason()}`);
  });
});

// ---- tiny ONNX models ------------------------------------------------------------------------

function valueInfo(name: string, elemType: number, rank: number) {
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: "tensorType",
        value: create(TypeProto_TensorSchema, {
          elemType,
          shape: create(TensorShapeProtoSchema, {
            dim: Array.from({ length: rank }, (_, i) => create(TensorShapeProto_DimensionSchema, { value: { case: "dimParam", value: `d${i}` } })),
          }),
        }),
      },
    }),
  });
}

function intAttr(name: string, i: number) {
  return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(i) });
}

function node(opType: string, input: string[], output: string[], attrs: Record<string, number> = {}): NodeProto {
  return create(NodeProtoSchema, {
    opType,
    input,
    output,
    name: `${opType}_${output[0]}`,
    attribute: Object.entries(attrs).map(([k, v]) => intAttr(k, v)),
  });
}

function floatTensor(name: string, values: Float32Array, dims: number[]): TensorProto {
  return create(TensorProtoSchema, {
    name,
    dataType: DT.FLOAT,
    dims: dims.map(BigInt),
    rawData: new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)),
  });
}

function rawTensor(name: string, dataType: number, bytes: Uint8Array, dims: number[]): TensorProto {
  return create(TensorProtoSchema, { name, dataType, dims: dims.map(BigInt), rawData: bytes });
}

interface ModelSpec {
  nodes: NodeProto[];
  inputs: { name: string; type: number; rank: number }[];
  outputs: { name: string; type: number; rank: number }[];
  initializers?: TensorProto[];
  opset?: number;
}

async function session(spec: ModelSpec): Promise<ort.InferenceSession> {
  const graph = create(GraphProtoSchema, {
    name: "numeric_check",
    node: spec.nodes,
    input: spec.inputs.map((i) => valueInfo(i.name, i.type, i.rank)),
    output: spec.outputs.map((o) => valueInfo(o.name, o.type, o.rank)),
    initializer: spec.initializers ?? [],
  });
  const model = create(ModelProtoSchema, {
    irVersion: 10n,
    producerName: "trt-debug-test",
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: "", version: BigInt(spec.opset ?? 21) })],
    graph,
  });
  // no graph optimization: the Cast round trips under test must not be folded away
  return ort.InferenceSession.create(toBinary(ModelProtoSchema, model), { graphOptimizationLevel: "disabled" });
}

async function runF32(s: ort.InferenceSession, x: Float32Array, dims: number[] = [x.length]): Promise<ort.Tensor["data"]> {
  const out = await s.run({ x: new ort.Tensor("float32", x, dims) });
  return out[s.outputNames[0]!]!.data;
}

// ---- inputs -------------------------------------------------------------------------------------

const bitsOf = (f: Float32Array) => new Uint32Array(f.buffer, f.byteOffset, f.length);

const ALL16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

/**
 * float32 inputs, as bit patterns: all 65536 fp16 patterns widened exactly (incl. NaN payloads),
 * all 65536 bf16 patterns widened (every float32 exponent, NaNs with payloads), the float32
 * neighbours and midpoints of all fp16 values, and random bit patterns. Length padded to a
 * multiple of 16 (see the note on onnxruntime's NaN payloads in docs/numeric.md).
 */
function floatInputs(extraRandom: number, seed: number): Float32Array {
  const parts: number[] = [];
  const f16 = bitsOf(tsImpl.f16ToF32(ALL16));
  for (const b of f16) parts.push(b);
  for (let b = 0; b < 65536; b++) parts.push((b << 16) >>> 0);
  // midpoints between consecutive fp16 values (+-1 ulp): exact float32 values
  const vals = tsImpl.f16ToF32(ALL16.subarray(0, 0x7c00));
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let h = 0; h < 0x7c00; h++) {
    f[0] = (vals[h]! + (h + 1 < 0x7c00 ? vals[h + 1]! : 65536)) / 2;
    const m = u[0]!;
    parts.push(m, m + 1, m - 1, (m | 0x80000000) >>> 0);
  }
  const rnd = fixtureRandom(seed);
  for (let i = 0; i < extraRandom; i++) parts.push((Math.floor(rnd() * 65536) * 65536 + Math.floor(rnd() * 65536)) >>> 0);
  while (parts.length % 16 !== 0) parts.push(0x7fc00000);
  return new Float32Array(Uint32Array.from(parts).buffer);
}

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}
function expectSameBits(ours: ArrayLike<number>, theirs: ArrayLike<number>, what: string, input?: Float32Array): void {
  const i = firstDiff(ours, theirs);
  if (i !== -1) {
    const x = i >= 0 && input ? ` (input bits 0x${bitsOf(input)[i]!.toString(16)})` : "";
    throw new Error(`${what}: ours ${i >= 0 ? ours[i] : "?"} vs onnxruntime ${i >= 0 ? theirs[i] : "?"} at ${i}${x}`);
  }
}

// ---- tests -------------------------------------------------------------------------------------

const X = floatInputs(400_000, 42);

describe.each(SUBJECTS)("bit-exact with onnxruntime Cast: $name", (subject) => {
  const impl = subject.impl;
  beforeAll(() => {
    if (subject.simd) nativeAddon()!.setSimd(subject.simd);
  });
  afterAll(() => {
    if (subject.simd) nativeAddon()!.setSimd("best");
  });

  it("float -> float16 (incl. NaN payloads on 16-aligned lengths) and float16 -> float", async () => {
    const toH = await session({
      nodes: [node("Cast", ["x"], ["y"], { to: DT.FLOAT16 })],
      inputs: [{ name: "x", type: DT.FLOAT, rank: 1 }],
      outputs: [{ name: "y", type: DT.FLOAT16, rank: 1 }],
    });
    const theirs = (await runF32(toH, X)) as Uint16Array;
    expect(theirs).toBeInstanceOf(Uint16Array);
    expectSameBits(impl.f32ToF16(X), theirs, "Cast float->float16", X);

    const toF = await session({
      nodes: [node("Cast", ["x"], ["y"], { to: DT.FLOAT })],
      inputs: [{ name: "x", type: DT.FLOAT16, rank: 1 }],
      outputs: [{ name: "y", type: DT.FLOAT, rank: 1 }],
    });
    const out = await toF.run({ x: new ort.Tensor("float16", ALL16, [65536]) });
    expectSameBits(bitsOf(impl.f16ToF32(ALL16)), bitsOf(out.y!.data as Float32Array), "Cast float16->float");

    const rt = await session({
      nodes: [node("Cast", ["x"], ["h"], { to: DT.FLOAT16 }), node("Cast", ["h"], ["y"], { to: DT.FLOAT })],
      inputs: [{ name: "x", type: DT.FLOAT, rank: 1 }],
      outputs: [{ name: "y", type: DT.FLOAT, rank: 1 }],
    });
    expectSameBits(bitsOf(impl.roundTo(X, "fp16")), bitsOf((await runF32(rt, X)) as Float32Array), "roundTo fp16", X);
  });

  it("float -> float16 on odd lengths: non-NaN bit-exact; NaN keeps NaN-ness and sign (onnxruntime's scalar tail drops payloads)", async () => {
    const s = await session({
      nodes: [node("Cast", ["x"], ["y"], { to: DT.FLOAT16 })],
      inputs: [{ name: "x", type: DT.FLOAT, rank: 1 }],
      outputs: [{ name: "y", type: DT.FLOAT16, rank: 1 }],
    });
    for (const n of [1, 7, 13, 100, 1001]) {
      const x = X.subarray(X.length - 16 * 300 - n, X.length - 16 * 300);
      const theirs = (await runF32(s, x)) as Uint16Array;
      const ours = impl.f32ToF16(x);
      for (let i = 0; i < n; i++) {
        const oursNaN = (ours[i]! & 0x7c00) === 0x7c00 && (ours[i]! & 0x3ff) !== 0;
        if (oursNaN) {
          expect(theirs[i]! & 0x7e00).toBe(0x7e00);
          expect(theirs[i]! & 0x8000).toBe(ours[i]! & 0x8000);
        } else if (ours[i] !== theirs[i]) {
          throw new Error(`n=${n} i=${i}: ${ours[i]} vs ${theirs[i]}`);
        }
      }
    }
  });

  it("float -> bfloat16 -> float, and bfloat16 -> float over all 65536 patterns", async () => {
    const s = await session({
      nodes: [node("Cast", ["x"], ["b"], { to: DT.BFLOAT16 }), node("Cast", ["b"], ["y"], { to: DT.FLOAT })],
      inputs: [{ name: "x", type: DT.FLOAT, rank: 1 }],
      outputs: [{ name: "y", type: DT.FLOAT, rank: 1 }],
    });
    const theirs = bitsOf((await runF32(s, X)) as Float32Array);
    expectSameBits(bitsOf(impl.bf16ToF32(impl.f32ToBf16(X))), theirs, "Cast float->bfloat16->float", X);
    expectSameBits(bitsOf(impl.roundTo(X, "bf16")), theirs, "roundTo bf16", X);

    const dec = await session({
      nodes: [node("Cast", ["c"], ["y"], { to: DT.FLOAT })],
      inputs: [],
      outputs: [{ name: "y", type: DT.FLOAT, rank: 1 }],
      initializers: [rawTensor("c", DT.BFLOAT16, new Uint8Array(ALL16.buffer.slice(0)), [65536])],
    });
    const out = await dec.run({});
    expectSameBits(bitsOf(impl.bf16ToF32(ALL16)), bitsOf(out.y!.data as Float32Array), "Cast bfloat16->float");
  });

  for (const [fmt, dt] of [
    ["fp8e4m3fn", DT.FLOAT8E4M3FN],
    ["fp8e5m2", DT.FLOAT8E5M2],
  ] as const) {
    it(`float -> ${fmt} -> float with saturate=1 and saturate=0; ${fmt} -> float over all 256 patterns`, async () => {
      // midpoints and neighbours of every fp8 code, beyond X's coverage
      const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
      const dec = tsImpl.fp8ToF32(codes, fmt);
      const extra: number[] = [];
      for (let v = 0; v < 127; v++) {
        const a = dec[v]!;
        const b = dec[v + 1]!;
        if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
        const m = (a + b) / 2;
        extra.push(m, -m, m * (1 + 2 ** -20), m * (1 - 2 ** -20));
      }
      extra.push(464, 470, 480, 495.5, 496, 512, 57344, 61439, 61440, 65535, 65536, 1e9, Infinity, -Infinity, -0, 0);
      while (extra.length % 16 !== 0) extra.push(0);
      const x = new Float32Array(X.length + extra.length);
      x.set(X);
      x.set(extra, X.length);
      for (const saturate of [1, 0]) {
        const s = await session({
          nodes: [node("Cast", ["x"], ["q"], { to: dt, saturate }), node("Cast", ["q"], ["y"], { to: DT.FLOAT })],
          inputs: [{ name: "x", type: DT.FLOAT, rank: 1 }],
          outputs: [{ name: "y", type: DT.FLOAT, rank: 1 }],
        });
        const theirs = bitsOf((await runF32(s, x)) as Float32Array);
        expectSameBits(bitsOf(impl.fp8ToF32(impl.f32ToFp8(x, fmt, saturate === 1), fmt)), theirs, `Cast float->${fmt} saturate=${saturate}`, x);
        if (saturate === 1) expectSameBits(bitsOf(impl.roundTo(x, fmt)), theirs, `roundTo ${fmt}`, x);
      }
      const d = await session({
        nodes: [node("Cast", ["c"], ["y"], { to: DT.FLOAT })],
        inputs: [],
        outputs: [{ name: "y", type: DT.FLOAT, rank: 1 }],
        initializers: [rawTensor("c", dt, codes.slice(), [256])],
      });
      const out = await d.run({});
      expectSameBits(bitsOf(impl.fp8ToF32(codes, fmt)), bitsOf(out.y!.data as Float32Array), `Cast ${fmt}->float`);
    });
  }
});

describe.each(SUBJECTS)("bit-exact with onnxruntime QuantizeLinear/DequantizeLinear (int8): $name", (subject) => {
  const impl = subject.impl;
  beforeAll(() => {
    if (subject.simd) nativeAddon()!.setSimd(subject.simd);
  });
  afterAll(() => {
    if (subject.simd) nativeAddon()!.setSimd("best");
  });

  /** x for scale s: exact ties (k + 0.5) * s, values just around them, random, specials. */
  function quantInputs(s: number, n: number, seed: number): Float32Array {
    const rnd = fixtureRandom(seed);
    const x = new Float32Array(n);
    const sf = Math.fround(s);
    for (let i = 0; i < n; i++) {
      const k = Math.floor(rnd() * 300) - 150;
      const kind = i % 4;
      if (kind === 0) x[i] = (k + 0.5) * sf;
      else if (kind === 1) x[i] = Math.fround((k + 0.5) * sf) * (1 + (rnd() - 0.5) * 2 ** -22);
      else if (kind === 2) x[i] = (rnd() - 0.5) * 300 * sf;
      else x[i] = (rnd() - 0.5) * 2 ** Math.floor(rnd() * 40 - 20);
    }
    x.set([NaN, -NaN, Infinity, -Infinity, 0, -0, 1e30, -1e30, 3.4e38, 1e-45, 127.5 * sf, -128.5 * sf, -127.5 * sf], 0);
    return x;
  }

  for (const opset of [13, 19, 21]) {
    it(`per tensor, opset ${opset}`, async () => {
      for (const s of [0.1, 0.0123, 1 / 127, 2 ** -7, 37.5]) {
        const scale = Float32Array.of(s);
        const sess = await session({
          opset,
          nodes: [node("QuantizeLinear", ["x", "s", "z"], ["q"]), node("DequantizeLinear", ["q", "s", "z"], ["y"])],
          inputs: [{ name: "x", type: DT.FLOAT, rank: 1 }],
          outputs: [
            { name: "q", type: DT.INT8, rank: 1 },
            { name: "y", type: DT.FLOAT, rank: 1 },
          ],
          initializers: [floatTensor("s", scale, []), rawTensor("z", DT.INT8, new Uint8Array(1), [])],
        });
        const x = quantInputs(s, 40_000, opset * 100 + Math.round(s * 1000));
        const out = await sess.run({ x: new ort.Tensor("float32", x, [x.length]) });
        const q = impl.quantizeInt8(x, { scale: s });
        expectSameBits(q, out.q!.data as Int8Array, `QuantizeLinear s=${s}`, x);
        expectSameBits(bitsOf(impl.dequantizeInt8(q, { scale: s })), bitsOf(out.y!.data as Float32Array), `DequantizeLinear s=${s}`);
        expectSameBits(bitsOf(impl.fakeQuantInt8(x, { scale: s })), bitsOf(out.y!.data as Float32Array), `Q->DQ s=${s}`, x);
      }
    });

    it(`per axis (axes 0 and 1), opset ${opset}`, async () => {
      for (const axis of [0, 1]) {
        const dims = axis === 0 ? [7, 1000] : [1000, 7];
        const C = 7;
        const scales = Float32Array.from({ length: C }, (_, c) => [0.1, 0.0123, 1 / 127, 2 ** -7, 0.37, 5, 1e-3][c]!);
        const sess = await session({
          opset,
          nodes: [node("QuantizeLinear", ["x", "s", "z"], ["q"], { axis }), node("DequantizeLinear", ["q", "s", "z"], ["y"], { axis })],
          inputs: [{ name: "x", type: DT.FLOAT, rank: 2 }],
          outputs: [
            { name: "q", type: DT.INT8, rank: 2 },
            { name: "y", type: DT.FLOAT, rank: 2 },
          ],
          initializers: [floatTensor("s", scales, [C]), rawTensor("z", DT.INT8, new Uint8Array(C), [C])],
        });
        // each element drawn for its own channel's scale
        const n = 7000;
        const x = new Float32Array(n);
        const inner = axis === 0 ? 1000 : 1;
        for (let c = 0; c < C; c++) {
          const xc = quantInputs(scales[c]!, n, 7 * c + axis + opset);
          for (let i = 0; i < n; i++) if (Math.floor(i / inner) % C === c) x[i] = xc[i]!;
        }
        const out = await sess.run({ x: new ort.Tensor("float32", x, dims) });
        const p = { scale: scales, axis, dims };
        const q = impl.quantizeInt8(x, p);
        expectSameBits(q, out.q!.data as Int8Array, `QuantizeLinear axis=${axis}`, x);
        expectSameBits(bitsOf(impl.dequantizeInt8(q, p)), bitsOf(out.y!.data as Float32Array), `DequantizeLinear axis=${axis}`);
        expectSameBits(bitsOf(impl.fakeQuantInt8(x, p)), bitsOf(out.y!.data as Float32Array), `Q->DQ axis=${axis}`, x);
      }
    });
  }

  it("DequantizeLinear of all 256 int8 values, per axis", async () => {
    const q = Int8Array.from({ length: 256 * 3 }, (_, i) => (i % 256) - 128);
    const scales = Float32Array.of(0.1, 1 / 127, 3.3);
    const sess = await session({
      opset: 21,
      nodes: [node("DequantizeLinear", ["q", "s", "z"], ["y"], { axis: 0 })],
      inputs: [{ name: "q", type: DT.INT8, rank: 2 }],
      outputs: [{ name: "y", type: DT.FLOAT, rank: 2 }],
      initializers: [floatTensor("s", scales, [3]), rawTensor("z", DT.INT8, new Uint8Array(3), [3])],
    });
    const out = await sess.run({ q: new ort.Tensor("int8", q, [3, 256]) });
    expectSameBits(bitsOf(impl.dequantizeInt8(q, { scale: scales, axis: 0, dims: [3, 256] })), bitsOf(out.y!.data as Float32Array), "DequantizeLinear");
  });
});
