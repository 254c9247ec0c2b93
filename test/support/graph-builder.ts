/**
 * A small, typed ONNX graph builder over onnx-buf (protobuf-es v2 messages), and helpers to
 * make TensorProto / ValueInfoProto / TypeProto / AttributeProto and to save a ModelProto,
 * optionally with its large initializers in an external-data side file.
 *
 *     const b = new GraphBuilder("mlp");
 *     const x = b.input("x", "float32", ["batch", 64]);
 *     const w = b.initializer("w", "float32", [64, 64], weights);
 *     const y = b.node("MatMul", [x, w], { name: "fc1" });          // "fc1_output_0"
 *     const z = b.node("Gemm", [x, w], { attrs: { alpha: b.f(2), transB: 1 } });
 *     b.output(y, "float32", ["batch", 64]);
 *     saveModel(b.model({ opset: 17 }), "m.onnx", { externalData: { location: "m.onnx.data" } });
 *
 * Attribute values: an integer `number`, `bigint` or `boolean` is INT, any other `number` is
 * FLOAT (write `b.f(1)` / `attr.float(1)` for a float that happens to be integral), `string`
 * is STRING; `number[]` is INTS when every element is an integer (and when empty) and FLOATS
 * otherwise (write `b.fs([1, 2])` when floats are meant), `bigint[]` INTS, `string[]` STRINGS;
 * a TensorProto, GraphProto or TypeProto (or an array of the first two) maps to TENSOR,
 * GRAPH, TYPE_PROTO, TENSORS, GRAPHS. The `attr` helpers make any type explicit.
 *
 * Output names: a node named N gets outputs `N_output_0`, `N_output_1`, ... (the naming
 * PyTorch's exporter uses); an unnamed node of type T gets `T_<k>_output_<i>` with k a
 * per-builder counter. Explicit `outputs` override both. Every tensor name is checked for
 * uniqueness across the graph and the subgraphs made with `b.subgraph()`.
 */
import { clearField, clone, create, toBinary } from "@bufbuild/protobuf";
import * as fs from "node:fs";
import * as path from "node:path";
import {
  AttributeProtoSchema,
  AttributeProto_AttributeType,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProtoSchema,
  TensorProto_DataLocation,
  TensorShapeProtoSchema,
  TensorShapeProto_DimensionSchema,
  TypeProtoSchema,
  TypeProto_MapSchema,
  TypeProto_OptionalSchema,
  TypeProto_SequenceSchema,
  TypeProto_TensorSchema,
  ValueInfoProtoSchema,
} from "onnx-buf";
import type {
  AttributeProto,
  GraphProto,
  ModelProto,
  NodeProto,
  TensorProto,
  TensorShapeProto_Dimension,
  TypeProto,
  ValueInfoProto,
} from "onnx-buf";
import type { DType, TensorData } from "../../src/core/host-tensor.js";
import { numel } from "../../src/core/host-tensor.js";
import { writeFileAtomicSync } from "../../src/core/output-file.js";
import { dtypeByteLength, dtypeToOnnx } from "../../src/core/dtype.js";
import { sequenceType, tensorType, type Dim } from "../../src/onnx/infer.js";
import { packNibbles } from "../../src/numeric/index.js";

export { sequenceType, tensorType, type Dim };

// ---------------------------------------------------------------------------------------
// Types


/**
 * Data accepted by makeTensor / GraphBuilder.initializer, per element type:
 * - float32: Float32Array | number[];   float64: Float64Array | number[]
 * - float16, bfloat16: Uint16Array of bit patterns (Node 20 has no Float16Array)
 * - float8*: Uint8Array of bit patterns
 * - int4, uint4: Uint8Array already packed (two per byte, low nibble first) | number[] values
 * - int8/uint8/int16/uint16/int32/uint32: the matching typed array | number[] (integers)
 * - int64/uint64: BigInt64Array / BigUint64Array | bigint[] | number[] (safe integers)
 * - bool: Uint8Array (0/1) | boolean[] | number[]
 * - string: string[] (UTF-8 encoded) | Uint8Array[] (raw bytes)
 * - complex64 / complex128: Float32Array / Float64Array (or number[]) of interleaved re, im
 */
export type TensorInit =
  | TensorData
  | readonly number[]
  | readonly (number | bigint)[]
  | readonly (number | boolean)[]
  | readonly string[]
  | readonly Uint8Array[];

/** An attribute value with its ONNX type spelled out (see `attr`). */
export type TypedAttr =
  | { readonly attrType: "float"; readonly value: number }
  | { readonly attrType: "floats"; readonly value: readonly number[] }
  | { readonly attrType: "int"; readonly value: number | bigint }
  | { readonly attrType: "ints"; readonly value: readonly (number | bigint)[] }
  | { readonly attrType: "string"; readonly value: string | Uint8Array }
  | { readonly attrType: "strings"; readonly value: readonly (string | Uint8Array)[] }
  | { readonly attrType: "tensor"; readonly value: TensorProto }
  | { readonly attrType: "tensors"; readonly value: readonly TensorProto[] }
  | { readonly attrType: "graph"; readonly value: GraphProto }
  | { readonly attrType: "graphs"; readonly value: readonly GraphProto[] }
  | { readonly attrType: "type"; readonly value: TypeProto }
  | { readonly attrType: "types"; readonly value: readonly TypeProto[] };

/** What a node attribute may be given as; see the module comment for the inference rules. */
export type AttrValue =
  | number
  | bigint
  | boolean
  | string
  | readonly number[]
  | readonly bigint[]
  | readonly string[]
  | TensorProto
  | GraphProto
  | TypeProto
  | readonly TensorProto[]
  | readonly GraphProto[]
  | TypedAttr;

/** Explicitly typed attribute values, for when inference from a JS value is ambiguous. */
export const attr = {
  float: (value: number): TypedAttr => ({ attrType: "float", value }),
  floats: (value: readonly number[]): TypedAttr => ({ attrType: "floats", value }),
  int: (value: number | bigint): TypedAttr => ({ attrType: "int", value }),
  ints: (value: readonly (number | bigint)[]): TypedAttr => ({ attrType: "ints", value }),
  string: (value: string | Uint8Array): TypedAttr => ({ attrType: "string", value }),
  strings: (value: readonly (string | Uint8Array)[]): TypedAttr => ({ attrType: "strings", value }),
  tensor: (value: TensorProto): TypedAttr => ({ attrType: "tensor", value }),
  tensors: (value: readonly TensorProto[]): TypedAttr => ({ attrType: "tensors", value }),
  graph: (value: GraphProto): TypedAttr => ({ attrType: "graph", value }),
  graphs: (value: readonly GraphProto[]): TypedAttr => ({ attrType: "graphs", value }),
  type: (value: TypeProto): TypedAttr => ({ attrType: "type", value }),
  types: (value: readonly TypeProto[]): TypedAttr => ({ attrType: "types", value }),
} as const;

// ---------------------------------------------------------------------------------------
// Tensors

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function bytesOf(a: ArrayBufferView): Uint8Array<ArrayBuffer> {
  if (!LITTLE_ENDIAN) throw new Error("trt-debug's ONNX writer needs a little-endian host");
  // slice() copies, so the tensor owns its bytes and later changes to `a` do not leak in.
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}

function isTypedArray(v: unknown): v is ArrayBufferView & ArrayLike<number | bigint> {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

function checkInts(name: string, values: ArrayLike<unknown>, lo: number, hi: number): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
      throw new Error(`tensor "${name}": element ${i} (${String(v)}) is not an integer in [${lo}, ${hi}]`);
    }
  }
}

type TypedCtor = {
  new (n: number): ArrayBufferView & ArrayLike<number>;
  from(a: ArrayLike<number>): ArrayBufferView & ArrayLike<number>;
};

const INT_TYPES: Partial<Record<DType, [TypedCtor, number, number]>> = {
  int8: [Int8Array, -128, 127],
  uint8: [Uint8Array, 0, 255],
  int16: [Int16Array, -32768, 32767],
  uint16: [Uint16Array, 0, 65535],
  int32: [Int32Array, -2147483648, 2147483647],
  uint32: [Uint32Array, 0, 4294967295],
};

type AnyTypedCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Uint16ArrayConstructor
  | Uint8ArrayConstructor
  | Int8ArrayConstructor
  | Int16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;

/** The typed array each element type's data may be given as (Buffer counts as Uint8Array). */
const NATIVE_ARRAY: Partial<Record<DType, AnyTypedCtor>> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  float8e4m3fn: Uint8Array,
  float8e4m3fnuz: Uint8Array,
  float8e5m2: Uint8Array,
  float8e5m2fnuz: Uint8Array,
  int4: Uint8Array,
  uint4: Uint8Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
  complex64: Float32Array,
  complex128: Float64Array,
};

/** Little-endian raw_data bytes of `n` elements of `dtype` given as `data`. */
function rawBytes(name: string, dtype: DType, n: number, data: TensorInit): Uint8Array<ArrayBuffer> {
  const elems = dtype === "complex64" || dtype === "complex128" ? 2 * n : n;
  const want = NATIVE_ARRAY[dtype];
  if (isTypedArray(data)) {
    if (!want || !(data instanceof want)) {
      const got = data.constructor.name;
      throw new Error(`tensor "${name}": ${dtype} data must be a ${want?.name ?? "?"} or a plain array, got ${got}`);
    }
    const expectLen = dtype === "int4" || dtype === "uint4" ? Math.ceil(n / 2) : elems;
    if (data.length !== expectLen) {
      throw new Error(`tensor "${name}": ${dtype} data has ${data.length} elements, dims need ${expectLen}`);
    }
    return bytesOf(data);
  }
  const arr = data as readonly unknown[];
  if (arr.length !== elems) {
    throw new Error(`tensor "${name}": data has ${arr.length} elements, dims need ${elems}`);
  }
  switch (dtype) {
    case "float32":
    case "complex64":
      return bytesOf(Float32Array.from(arr as readonly number[]));
    case "float64":
    case "complex128":
      return bytesOf(Float64Array.from(arr as readonly number[]));
    case "int64":
    case "uint64": {
      const out = dtype === "int64" ? new BigInt64Array(n) : new BigUint64Array(n);
      for (let i = 0; i < n; i++) {
        const v = arr[i];
        if (typeof v === "bigint") out[i] = v;
        else if (typeof v === "number" && Number.isSafeInteger(v)) out[i] = BigInt(v);
        else throw new Error(`tensor "${name}": element ${i} (${String(v)}) is not an integer`);
      }
      return bytesOf(out);
    }
    case "bool": {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = arr[i];
        if (v === true || v === 1) out[i] = 1;
        else if (v === false || v === 0) out[i] = 0;
        else throw new Error(`tensor "${name}": bool element ${i} (${String(v)}) is not true/false/0/1`);
      }
      return out;
    }
    case "int4":
    case "uint4": {
      const [lo, hi] = dtype === "int4" ? [-8, 7] : [0, 15];
      checkInts(name, arr, lo, hi);
      return packNibbles(arr as readonly number[]);
    }
    default: {
      const spec = INT_TYPES[dtype];
      if (!spec) {
        throw new Error(
          `tensor "${name}": ${dtype} data must be a ${want?.name ?? "typed array"} (bit patterns), not a plain array`,
        );
      }
      const [Ctor, lo, hi] = spec;
      checkInts(name, arr, lo, hi);
      return bytesOf(Ctor.from(arr as readonly number[]));
    }
  }
}

function toDims(name: string, dims: readonly number[]): bigint[] {
  return dims.map((d) => {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`tensor "${name}": bad dimension ${d}`);
    return BigInt(d);
  });
}

/**
 * A TensorProto named `name` with element type `dtype`, shape `dims` (`[]` for a scalar) and
 * the given data (see TensorInit). Numeric data is stored as little-endian raw_data, strings
 * in string_data.
 */
export function makeTensor(name: string, dtype: DType, dims: readonly number[], data: TensorInit): TensorProto {
  const n = numel(dims);
  const t = create(TensorProtoSchema, { name, dims: toDims(name, dims), dataType: dtypeToOnnx(dtype) });
  if (dtype === "string") {
    const arr = data as readonly unknown[];
    if (!Array.isArray(arr) || arr.length !== n) {
      throw new Error(`tensor "${name}": string data must be an array of ${n} strings`);
    }
    const enc = new TextEncoder();
    t.stringData = arr.map((s, i) => {
      if (typeof s === "string") return enc.encode(s);
      if (s instanceof Uint8Array) return new Uint8Array(s);
      throw new Error(`tensor "${name}": string element ${i} is neither a string nor bytes`);
    });
    return t;
  }
  const raw = rawBytes(name, dtype, n, data);
  if (raw.byteLength !== dtypeByteLength(dtype, n)) {
    throw new Error(`tensor "${name}": internal size mismatch`);
  }
  t.rawData = raw;
  return t;
}

/** A scalar float32 tensor (dims []). */
export function scalarTensor(name: string, value: number, dtype: DType = "float32"): TensorProto {
  return makeTensor(name, dtype, [], dtype === "int64" || dtype === "uint64" ? [BigInt(value)] : [value]);
}

// ---------------------------------------------------------------------------------------
// Types and value infos




/** An optional TypeProto, e.g. `optionalType(tensorType("float32", [2]))`. */
export function optionalType(elem: TypeProto): TypeProto {
  return create(TypeProtoSchema, {
    value: { case: "optionalType", value: create(TypeProto_OptionalSchema, { elemType: elem }) },
  });
}

/** A map TypeProto (key: an integer type or string). */
export function mapType(key: DType, value: TypeProto): TypeProto {
  return create(TypeProtoSchema, {
    value: { case: "mapType", value: create(TypeProto_MapSchema, { keyType: dtypeToOnnx(key), valueType: value }) },
  });
}

function isMsg(v: unknown, typeName: string): boolean {
  return typeof v === "object" && v !== null && (v as { $typeName?: unknown }).$typeName === typeName;
}

/**
 * A ValueInfoProto. `type` is an element type (tensor; `dims` as in tensorType) or a full
 * TypeProto (sequence, optional, map); omitted = no type at all (onnxruntime accepts
 * untyped graph outputs, which is how intermediate tensors are exposed).
 */
export function makeValueInfo(name: string, type?: DType | TypeProto, dims?: readonly Dim[]): ValueInfoProto {
  const vi = create(ValueInfoProtoSchema, { name });
  if (type === undefined) {
    if (dims !== undefined) throw new Error(`value info "${name}": dims given without an element type`);
    return vi;
  }
  if (typeof type === "string") vi.type = tensorType(type, dims);
  else {
    if (dims !== undefined) throw new Error(`value info "${name}": dims go inside the TypeProto`);
    vi.type = type;
  }
  return vi;
}

// ---------------------------------------------------------------------------------------
// Attributes

const T = AttributeProto_AttributeType;

function intOf(name: string, v: number | bigint | boolean): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "boolean") return v ? 1n : 0n;
  if (!Number.isSafeInteger(v)) throw new Error(`attribute "${name}": ${v} is not an integer`);
  return BigInt(v);
}

function strBytes(s: string | Uint8Array): Uint8Array<ArrayBuffer> {
  return typeof s === "string" ? new TextEncoder().encode(s) : new Uint8Array(s);
}

function typedAttr(name: string, v: TypedAttr): AttributeProto {
  const a = create(AttributeProtoSchema, { name });
  switch (v.attrType) {
    case "float":
      a.type = T.FLOAT;
      a.f = v.value;
      break;
    case "floats":
      a.type = T.FLOATS;
      a.floats = [...v.value];
      break;
    case "int":
      a.type = T.INT;
      a.i = intOf(name, v.value);
      break;
    case "ints":
      a.type = T.INTS;
      a.ints = v.value.map((x) => intOf(name, x));
      break;
    case "string":
      a.type = T.STRING;
      a.s = strBytes(v.value);
      break;
    case "strings":
      a.type = T.STRINGS;
      a.strings = v.value.map(strBytes);
      break;
    case "tensor":
      a.type = T.TENSOR;
      a.t = v.value;
      break;
    case "tensors":
      a.type = T.TENSORS;
      a.tensors = [...v.value];
      break;
    case "graph":
      a.type = T.GRAPH;
      a.g = v.value;
      break;
    case "graphs":
      a.type = T.GRAPHS;
      a.graphs = [...v.value];
      break;
    case "type":
      a.type = T.TYPE_PROTO;
      a.tp = v.value;
      break;
    case "types":
      a.type = T.TYPE_PROTOS;
      a.typeProtos = [...v.value];
      break;
  }
  return a;
}

/** Infer the ONNX attribute type of a JS value (module comment) and make the attribute. */
export function makeAttribute(name: string, value: AttrValue): AttributeProto {
  if (typeof value === "number") {
    return typedAttr(name, Number.isInteger(value) ? attr.int(value) : attr.float(value));
  }
  if (typeof value === "bigint" || typeof value === "boolean") return typedAttr(name, attr.int(intOf(name, value)));
  if (typeof value === "string") return typedAttr(name, attr.string(value));
  if (Array.isArray(value)) {
    const arr = value as readonly unknown[];
    if (arr.length === 0 || arr.every((x) => typeof x === "bigint")) return typedAttr(name, attr.ints(arr as bigint[]));
    if (arr.every((x) => typeof x === "number")) {
      const nums = arr as number[];
      return typedAttr(name, nums.every(Number.isInteger) ? attr.ints(nums) : attr.floats(nums));
    }
    if (arr.every((x) => typeof x === "string")) return typedAttr(name, attr.strings(arr as string[]));
    if (arr.every((x) => isMsg(x, "onnx.TensorProto"))) return typedAttr(name, attr.tensors(arr as TensorProto[]));
    if (arr.every((x) => isMsg(x, "onnx.GraphProto"))) return typedAttr(name, attr.graphs(arr as GraphProto[]));
    throw new Error(`attribute "${name}": cannot infer the type of a mixed list`);
  }
  if (isMsg(value, "onnx.TensorProto")) return typedAttr(name, attr.tensor(value as TensorProto));
  if (isMsg(value, "onnx.GraphProto")) return typedAttr(name, attr.graph(value as GraphProto));
  if (isMsg(value, "onnx.TypeProto")) return typedAttr(name, attr.type(value as TypeProto));
  if (typeof value === "object" && value !== null && "attrType" in value) return typedAttr(name, value as TypedAttr);
  throw new Error(`attribute "${name}": unsupported value`);
}

// ---------------------------------------------------------------------------------------
// Graph builder

/** Options of GraphBuilder.node / nodeN. */
export interface NodeOptions {
  /** Node name; omitted or "" = unnamed node. */
  name?: string;
  /** Output tensor names (default: see module comment). "" marks an omitted optional output. */
  outputs?: readonly string[];
  attrs?: Readonly<Record<string, AttrValue>>;
  /** Operator domain ("" = default ONNX domain). */
  domain?: string;
  docString?: string;
}

/** Options of GraphBuilder.model. */
export interface ModelOptions {
  /** Default-domain opset (default 17). */
  opset?: number;
  /** IR version (default 8, what opset 17 pairs with). */
  irVersion?: number;
  /** Further operator sets, e.g. `{ "com.microsoft": 1 }`. */
  domainOpsets?: Readonly<Record<string, number>>;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  /** metadata_props entries, written in key order. */
  metadata?: Readonly<Record<string, string>>;
}

export interface GraphBuilderOptions {
  /** Allow two nodes with the same non-empty name (for loader fixtures); default false. */
  allowDuplicateNodeNames?: boolean;
}

/** Tensor and node names shared by a graph and its subgraphs. */
class NameScope {
  readonly tensors = new Set<string>();
  readonly nodes = new Set<string>();
  unnamedCounter = 0;
}

export class GraphBuilder {
  readonly name: string;
  private readonly scope: NameScope;
  private readonly opts: GraphBuilderOptions;
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly valueInfos: ValueInfoProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly nodes: NodeProto[] = [];

  constructor(name: string, options: GraphBuilderOptions = {}, scope?: NameScope) {
    this.name = name;
    this.opts = options;
    this.scope = scope ?? new NameScope();
  }

  /**
   * A builder for a subgraph (If/Loop/Scan body) sharing this builder's tensor names, so
   * generated names never shadow outer ones; the subgraph may use any outer tensor by name.
   */
  subgraph(name: string): GraphBuilder {
    return new GraphBuilder(name, this.opts, this.scope);
  }

  /** Float attribute value, e.g. `{ alpha: b.f(1) }` (an integral number alone means INT). */
  f(value: number): TypedAttr {
    return attr.float(value);
  }

  /** Float-list attribute value. */
  fs(value: readonly number[]): TypedAttr {
    return attr.floats(value);
  }

  /** True when a tensor of this name exists in this graph or a related one. */
  has(name: string): boolean {
    return this.scope.tensors.has(name);
  }

  /** A tensor name starting with `base` that is not used yet (and is now reserved). */
  uniqueName(base: string): string {
    let n = base;
    for (let k = 1; this.scope.tensors.has(n); k++) n = `${base}_${k}`;
    this.scope.tensors.add(n);
    return n;
  }

  private claim(name: string, what: string): void {
    if (name === "") throw new Error(`${what}: empty tensor name`);
    if (this.scope.tensors.has(name)) throw new Error(`${what}: tensor "${name}" is already defined`);
    this.scope.tensors.add(name);
  }

  /** Declare a graph input; returns its name. */
  input(name: string, type: DType | TypeProto, dims?: readonly Dim[]): string {
    this.claim(name, "input");
    this.inputs.push(makeValueInfo(name, type, dims));
    return name;
  }

  /** Add an initializer made from typed data (see TensorInit); returns its name. */
  initializer(name: string, dtype: DType, dims: readonly number[], data: TensorInit): string {
    return this.addInitializer(makeTensor(name, dtype, dims, data));
  }

  /** Add an existing TensorProto as initializer; returns its name. */
  addInitializer(t: TensorProto): string {
    this.claim(t.name, "initializer");
    this.initializers.push(t);
    return t.name;
  }

  /** A Constant node holding the given data; returns its output name (= `name`). */
  constant(name: string, dtype: DType, dims: readonly number[], data: TensorInit, nodeName = ""): string {
    return this.node("Constant", [], {
      name: nodeName,
      outputs: [name],
      attrs: { value: makeTensor(name, dtype, dims, data) },
    });
  }

  /** Add a node; returns its first output's name (use nodeN for several outputs). */
  node(opType: string, inputs: readonly string[], options: NodeOptions = {}): string {
    if (options.outputs && options.outputs.length === 0) {
      throw new Error(`node ${options.name || opType}: node() needs an output; use nodeN for none`);
    }
    return this.nodeN(opType, inputs, options.outputs ?? 1, options)[0]!;
  }

  /**
   * Add a node with `outputs` outputs (a count, for generated names, or the names);
   * returns the output names.
   */
  nodeN(
    opType: string,
    inputs: readonly string[],
    outputs: number | readonly string[],
    options: NodeOptions = {},
  ): string[] {
    const name = options.name ?? "";
    if (name !== "") {
      if (this.scope.nodes.has(name) && !this.opts.allowDuplicateNodeNames) {
        throw new Error(`node "${name}" is already defined`);
      }
      this.scope.nodes.add(name);
    }
    let outNames: string[];
    if (typeof outputs === "number") {
      const stem = name !== "" ? name : `${opType}_${this.scope.unnamedCounter++}`;
      outNames = [];
      for (let i = 0; i < outputs; i++) outNames.push(`${stem}_output_${i}`);
    } else {
      outNames = [...outputs];
    }
    for (const o of outNames) if (o !== "") this.claim(o, `node ${name || opType}`);
    const node = create(NodeProtoSchema, { input: [...inputs], output: outNames, opType });
    if (name !== "") node.name = name;
    if (options.domain) node.domain = options.domain;
    if (options.docString) node.docString = options.docString;
    if (options.attrs) {
      node.attribute = Object.entries(options.attrs).map(([k, v]) => makeAttribute(k, v));
    }
    this.nodes.push(node);
    return outNames;
  }

  /** Add an existing NodeProto as is (no name checks); returns its outputs. */
  addNode(node: NodeProto): string[] {
    for (const o of node.output) if (o !== "") this.scope.tensors.add(o);
    if (node.name) this.scope.nodes.add(node.name);
    this.nodes.push(node);
    return [...node.output];
  }

  /** Declare a graph output (type optional: onnxruntime accepts untyped outputs). */
  output(name: string, type?: DType | TypeProto, dims?: readonly Dim[]): string {
    this.outputs.push(makeValueInfo(name, type, dims));
    return name;
  }

  /** Record a value_info entry (shape/type annotation of an intermediate tensor). */
  valueInfo(name: string, type: DType | TypeProto, dims?: readonly Dim[]): void {
    this.valueInfos.push(makeValueInfo(name, type, dims));
  }

  /** Nodes added so far, in order (the live array: reorder it to make unsorted fixtures). */
  get nodeList(): NodeProto[] {
    return this.nodes;
  }

  /** The GraphProto (fresh message; the builder can keep going). */
  graph(): GraphProto {
    return create(GraphProtoSchema, {
      name: this.name,
      node: [...this.nodes],
      initializer: [...this.initializers],
      input: [...this.inputs],
      output: [...this.outputs],
      valueInfo: [...this.valueInfos],
    });
  }

  /** A ModelProto around graph(). No timestamps or host data: output is deterministic. */
  model(options: ModelOptions = {}): ModelProto {
    return makeModel(this.graph(), options);
  }
}

/** Wrap a GraphProto in a ModelProto (see ModelOptions for defaults). */
export function makeModel(graph: GraphProto, options: ModelOptions = {}): ModelProto {
  const opsets = [create(OperatorSetIdProtoSchema, { domain: "", version: BigInt(options.opset ?? 17) })];
  for (const [domain, version] of Object.entries(options.domainOpsets ?? {})) {
    opsets.push(create(OperatorSetIdProtoSchema, { domain, version: BigInt(version) }));
  }
  const m = create(ModelProtoSchema, {
    irVersion: BigInt(options.irVersion ?? 8),
    opsetImport: opsets,
    producerName: options.producerName ?? "trt-debug",
    graph,
  });
  if (options.producerVersion !== undefined) m.producerVersion = options.producerVersion;
  if (options.docString !== undefined) m.docString = options.docString;
  if (options.metadata) {
    m.metadataProps = Object.keys(options.metadata)
      .sort()
      .map((key) => create(StringStringEntryProtoSchema, { key, value: options.metadata![key]! }));
  }
  return m;
}

// ---------------------------------------------------------------------------------------
// Serialization

export { modelBytes, saveModel, type ExternalDataOptions, type SaveOptions } from "../../src/onnx/model-file.js";
