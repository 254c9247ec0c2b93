/**
 * NumPy `.npz` archives (numpy.savez / savez_compressed): a zip of `.npy` members, read with
 * fflate (stored and deflated members). Member `name.npy` is array `name`.
 */
import { unzipSync } from "fflate";
import { UserError } from "../core/errors.js";
import { decodeNpy, type NpyArray } from "./npy.js";

/** Every array of a .npz file, by name (member name without `.npy`), in archive order. */
export function decodeNpz(bytes: Uint8Array, where: string): Map<string, NpyArray> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new UserError(`${where}: not a readable .npz (zip) archive (${(e as Error).message}); save it with numpy.savez or numpy.savez_compressed`);
  }
  const out = new Map<string, NpyArray>();
  for (const [member, data] of Object.entries(files)) {
    if (member.endsWith("/")) continue;
    const name = member.endsWith(".npy") ? member.slice(0, -4) : member;
    out.set(name, decodeNpy(data, `${where}: member '${member}'`));
  }
  if (out.size === 0) throw new UserError(`${where}: the .npz archive holds no arrays; save them with numpy.savez(file, name=array)`);
  return out;
}
