/**
 * One `torch.save` tensor, as Polygraphy's JSON encoder writes torch tensors
 * (polygraphy/json/serde.py, `@Encoder.register(torch.Tensor)`: `{"tensor": "<base64 of
 * torch.save(tensor)>", "polygraphy_class": "Tensor"}`). This is how bfloat16 outputs reach a
 * RunResults file: NumPy has no bfloat16 (polygraphy/datatype/numpy.py maps no numpy dtype to
 * BFLOAT16), so the TensorRT runner returns bfloat16 outputs as torch tensors
 * (backend/trt/runner.py, `util.array.view(raw_array, dtype, shape)` on a torch buffer).
 *
 * torch.save writes a zip archive (`<archive>/data.pkl`, `<archive>/data/<key>`,
 * `<archive>/byteorder`): data.pkl is a pickle of
 * `torch._utils._rebuild_tensor_v2(PERSID(("storage", torch.<Type>Storage, key, location, numel)),
 * storage_offset, size, stride, requires_grad, hooks[, metadata])`, the storage bytes are
 * member `data/<key>`. The pickle is read by a small interpreter of the opcodes pickle
 * protocols 2-4 use for such data (no code is run: globals are names only). bfloat16 comes
 * back as float32 (exact: a bfloat16 is the top 16 bits of a float32).
 */
import { unzipSync } from "fflate";
import { UserError } from "../core/errors.js";
import { bf16ToF32, gatherStrided, normalizeBools } from "../numeric/index.js";
import { hostView } from "../core/dtype.js";
import type { DType } from "../core/host-tensor.js";
import type { NpyArray } from "./npy.js";

const FIX = "save the outputs with torch >= 1.13's torch.save (as Polygraphy does) or convert them to float32 before saving";

interface Global {
  global: string;
}
interface Call {
  call: string;
  args: unknown[];
}
interface Persistent {
  persistent: unknown;
}
const MARK = Symbol("mark");

/** Storage class → element size, the DType it is read as, and whether it is bfloat16. */
const STORAGES: Record<string, { size: number; dtype: DType; bf16?: boolean }> = {
  BFloat16Storage: { size: 2, dtype: "float32", bf16: true },
  HalfStorage: { size: 2, dtype: "float16" },
  FloatStorage: { size: 4, dtype: "float32" },
  DoubleStorage: { size: 8, dtype: "float64" },
  CharStorage: { size: 1, dtype: "int8" },
  ShortStorage: { size: 2, dtype: "int16" },
  IntStorage: { size: 4, dtype: "int32" },
  LongStorage: { size: 8, dtype: "int64" },
  ByteStorage: { size: 1, dtype: "uint8" },
  BoolStorage: { size: 1, dtype: "bool" },
};

/** Runs the pickle `p` (data only) and returns the value STOP leaves. */
function unpickle(p: Uint8Array, where: string): unknown {
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let i = 0;
  const bad = (what: string): never => {
    throw new UserError(`${where}: torch.save data.pkl ${what}; ${FIX}`);
  };
  const need = (n: number) => {
    if (i + n > p.length) bad("is truncated");
  };
  const line = (): string => {
    const end = p.indexOf(0x0a, i);
    if (end < 0) bad("is truncated");
    const s = Buffer.from(p.subarray(i, end)).toString("utf8");
    i = end + 1;
    return s;
  };
  const str = (n: number): string => {
    need(n);
    const s = Buffer.from(p.subarray(i, i + n)).toString("utf8");
    i += n;
    return s;
  };
  const popMark = (): unknown[] => {
    const k = stack.lastIndexOf(MARK);
    if (k < 0) bad("has no MARK");
    return stack.splice(k).slice(1);
  };
  const pop = (): unknown => {
    if (stack.length === 0) bad("pops an empty stack");
    return stack.pop();
  };
  while (i < p.length) {
    const op = p[i++]!;
    switch (op) {
      case 0x80: // PROTO
        need(1);
        i += 1;
        break;
      case 0x95: // FRAME
        need(8);
        i += 8;
        break;
      case 0x63: { // GLOBAL
        const mod = line();
        stack.push({ global: `${mod}.${line()}` } satisfies Global);
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        stack.push({ global: `${String(pop())}.${String(name)}` } satisfies Global);
        break;
      }
      case 0x71: need(1); memo.set(p[i++]!, stack[stack.length - 1]); break; // BINPUT
      case 0x72: need(4); memo.set(dv.getUint32(i, true), stack[stack.length - 1]); i += 4; break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, stack[stack.length - 1]); break; // MEMOIZE
      case 0x68: need(1); stack.push(memo.get(p[i++]!)); break; // BINGET
      case 0x6a: need(4); stack.push(memo.get(dv.getUint32(i, true))); i += 4; break; // LONG_BINGET
      case 0x28: stack.push(MARK); break; // MARK
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x61: { const v = pop(); (stack[stack.length - 1] as unknown[]).push(v); break; } // APPEND
      case 0x65: { const vs = popMark(); (stack[stack.length - 1] as unknown[]).push(...vs); break; } // APPENDS
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x73: { const v = pop(); const k = pop(); (stack[stack.length - 1] as Map<unknown, unknown>).set(k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const kv = popMark();
        const d = stack[stack.length - 1] as Map<unknown, unknown>;
        for (let k = 0; k + 1 < kv.length; k += 2) d.set(kv[k], kv[k + 1]);
        break;
      }
      case 0x58: need(4); { const n = dv.getUint32(i, true); i += 4; stack.push(str(n)); } break; // BINUNICODE
      case 0x8c: need(1); stack.push(str(p[i++]!)); break; // SHORT_BINUNICODE
      case 0x4a: need(4); stack.push(dv.getInt32(i, true)); i += 4; break; // BININT
      case 0x4b: need(1); stack.push(p[i++]!); break; // BININT1
      case 0x4d: need(2); stack.push(dv.getUint16(i, true)); i += 2; break; // BININT2
      case 0x8a: { // LONG1
        need(1);
        const n = p[i++]!;
        need(n);
        let v = 0n;
        for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(p[i + k]!);
        if (n > 0 && p[i + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        i += n;
        stack.push(Number(v));
        break;
      }
      case 0x47: need(8); stack.push(dv.getFloat64(i, false)); i += 8; break; // BINFLOAT
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x51: stack.push({ persistent: pop() } satisfies Persistent); break; // BINPERSID
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop() as Global;
        if (!fn || typeof fn.global !== "string" || !Array.isArray(args)) bad("calls something that is not a global");
        stack.push({ call: fn.global, args: args as unknown[] } satisfies Call);
        break;
      }
      case 0x62: pop(); break; // BUILD (state of an object: not needed)
      case 0x2e: // STOP
        return pop();
      default:
        bad(`uses pickle opcode 0x${op.toString(16)} (not a plain tensor)`);
    }
  }
  return bad("has no STOP");
}

/** Decodes the bytes of `torch.save(tensor)` into a host array. `where` names it in errors. */
export function decodeTorchTensor(bytes: Uint8Array, where: string): NpyArray {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new UserError(`${where}: "tensor" is not a torch.save zip archive (${(e as Error).message}); ${FIX}`);
  }
  const pkl = Object.keys(files).find((f) => /(^|\/)data\.pkl$/.test(f));
  if (pkl === undefined) throw new UserError(`${where}: the torch.save archive has no data.pkl; ${FIX}`);
  const prefix = pkl.slice(0, -"data.pkl".length);
  const root = unpickle(files[pkl]!, where) as Call;
  if (!root || root.call !== "torch._utils._rebuild_tensor_v2") {
    throw new UserError(`${where}: the torch.save archive holds ${root && typeof root.call === "string" ? root.call : "something other than a tensor"}, not a plain tensor (torch._utils._rebuild_tensor_v2); ${FIX}`);
  }
  const [storage, offset, size, stride] = root.args as [Persistent, number, number[], number[]];
  const pid = storage?.persistent as [string, Global, string, string, number] | undefined;
  if (!Array.isArray(pid) || pid[0] !== "storage" || typeof pid[1]?.global !== "string") throw new UserError(`${where}: the tensor's storage is not a torch.save storage reference; ${FIX}`);
  const type = pid[1].global.replace(/^torch\./, "");
  const st = STORAGES[type];
  if (!st) throw new UserError(`${where}: torch storage type ${pid[1].global} is not read (read: ${Object.keys(STORAGES).join(", ")}); convert the tensor to float32 before saving`);
  const raw = files[`${prefix}data/${pid[2]}`];
  if (raw === undefined) throw new UserError(`${where}: the torch.save archive lacks member data/${pid[2]} (the tensor's storage); ${FIX}`);
  const order = files[`${prefix}byteorder`];
  const big = order !== undefined && Buffer.from(order).toString("latin1").trim() === "big";
  if (!Array.isArray(size) || !Array.isArray(stride) || size.length !== stride.length || typeof offset !== "number") {
    throw new UserError(`${where}: the tensor's size/stride in data.pkl are malformed; ${FIX}`);
  }
  const dims = size.map(Number);
  const es = st.size;
  // Gathered element by element in row-major order (any strides, any offset).
  const out = gatherStrided(raw, es, dims, stride as number[], offset, big);
  if (!out) throw new UserError(`${where}: the tensor reaches past its storage (${raw.length} bytes); ${FIX}`);
  const buf = out.buffer;
  let data: NpyArray["data"];
  if (st.bf16) data = bf16ToF32(new Uint16Array(buf));
  else {
    data = hostView(st.dtype, buf);
    if (st.dtype === "bool") normalizeBools(data as Uint8Array);
  }
  return { dtype: st.dtype, dims, data, descr: `torch.${type}`, fortranOrder: false };
}
