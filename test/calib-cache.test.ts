import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CALIBRATION_JSON_FORMAT,
  DEFAULT_TRT_VERSION,
  amaxToScale,
  cacheFromAmax,
  calibrationJson,
  formatCalibrationCache,
  hexToScale,
  parseCalibrationCache,
  readCalibrationCache,
  scaleToAmax,
  scaleToHex,
  writeCalibrationCache,
} from "../src/calibration/cache.js";
import { UserError } from "../src/core/errors.js";

/** Float32 from raw bits, independent of the library. */
function f32(bits: number): number {
  const b = new ArrayBuffer(4);
  new Uint32Array(b)[0] = bits >>> 0;
  return new Float32Array(b)[0]!;
}

/** Bits of a float32 value, independent of the library. */
function bitsOf(x: number): number {
  const b = new ArrayBuffer(4);
  new Float32Array(b)[0] = x;
  return new Uint32Array(b)[0]!;
}

function expectUserError(fn: () => unknown, re: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UserError);
  const msg = (err as Error).message;
  expect(msg).toMatch(re);
  expect(msg).not.toContain("\n");
}

describe("scale hex encoding", () => {
  it("3c010204 is 1/127 as float32: amax 1.0", () => {
    const s = hexToScale("3c010204");
    expect(s).toBe(Math.fround(1 / 127));
    expect(s).toBeCloseTo(0.007874, 6);
    expect(Math.fround(scaleToAmax(s))).toBe(1);
    expect(scaleToHex(amaxToScale(1))).toBe("3c010204");
    expect(hexToScale("3C010204")).toBe(s); // upper case accepted
  });

  it("round-trips bit for bit: denormals, 1/127, odd values, zero, max", () => {
    const patterns = [
      0x00000000, // +0
      0x00000001, // smallest denormal
      0x000f1234, // denormal
      0x007fffff, // largest denormal
      0x00800000, // smallest normal
      0x3c010204, // 1/127
      0x3c3604b4, // from a real cache
      0x3f800000, // 1
      0x3eaaaaab, // 1/3
      0x40490fdb, // pi
      0x7f7fffff, // float32 max
      0x12345678,
      0x3a83126f,
    ];
    for (const p of patterns) {
      const hex = p.toString(16).padStart(8, "0");
      const s = hexToScale(hex);
      expect(s).toBe(f32(p));
      expect(scaleToHex(s)).toBe(hex);
      expect(bitsOf(s)).toBe(p);
    }
  });

  it("big-endian: the first hex digits are the sign/exponent", () => {
    expect(scaleToHex(1)).toBe("3f800000");
    expect(scaleToHex(2)).toBe("40000000");
    expect(scaleToHex(f32(1))).toBe("00000001");
  });

  it("scaleToHex rounds a double to the nearest float32", () => {
    expect(scaleToHex(1 / 127)).toBe("3c010204");
    expect(hexToScale(scaleToHex(0.1))).toBe(Math.fround(0.1));
  });
});

describe("TensorRT text cache", () => {
  const sample = [
    "TRT-8601-EntropyCalibration2",
    "input: 3c010204",
    "(Unnamed ITensor* 38): 3c3604b4",
    "/model/conv1/Conv_output_0: 3d8a1c2f",
    "name with spaces: and: colons: 3f800000",
    "",
  ].join("\n");

  it("parses names with spaces, colons and parentheses (split at the last ': ')", () => {
    const c = parseCalibrationCache(sample, "model.cache");
    expect(c.version).toBe("8601");
    expect(c.algorithm).toBe("EntropyCalibration2");
    expect(c.source).toBe("tensorrt");
    expect([...c.scales.keys()]).toEqual([
      "input",
      "(Unnamed ITensor* 38)",
      "/model/conv1/Conv_output_0",
      "name with spaces: and: colons",
    ]);
    expect(c.scales.get("input")).toBe(f32(0x3c010204));
    expect(127 * c.scales.get("input")!).toBeCloseTo(1, 6);
    expect(c.scales.get("(Unnamed ITensor* 38)")).toBe(f32(0x3c3604b4));
    expect(c.scales.get("name with spaces: and: colons")).toBe(1);
  });

  it("formats back to the identical text", () => {
    const c = parseCalibrationCache(sample, "model.cache");
    expect(formatCalibrationCache(c)).toBe(sample);
  });

  it("reads any version and algorithm and says which", () => {
    const a = parseCalibrationCache("TRT-100300-MinMaxCalibration\nx: 3f800000\n", "a.cache");
    expect([a.version, a.algorithm]).toEqual(["100300", "MinMaxCalibration"]);
    const b = parseCalibrationCache("TRT-7000-EntropyCalibration\r\nx: 3f800000", "b.cache");
    expect([b.version, b.algorithm, b.scales.get("x")]).toEqual(["7000", "EntropyCalibration", 1]);
    const c = parseCalibrationCache("\uFEFFTRT-5105-LegacyCalibration\n", "c.cache");
    expect(c.algorithm).toBe("LegacyCalibration");
    expect(c.scales.size).toBe(0);
  });

  it("write → read round trip is bit for bit, in insertion order", () => {
    const scales = new Map<string, number>([
      ["z_last_alphabetically_first", f32(0x3c010204)],
      ["tiny denormal", f32(0x00000001)],
      ["(Unnamed ITensor* 38)", f32(0x3c3604b4)],
      ["a: b: c", f32(0x3eaaaaab)],
      ["12", f32(0x4049_0fdb)],
      ["zero", 0],
      ["ünïcødé/テンソル", f32(0x12345678)],
    ]);
    const text = formatCalibrationCache({ version: "8601", algorithm: "EntropyCalibration2", scales });
    expect(text.endsWith("\n")).toBe(true);
    expect(text.split("\n")[0]).toBe("TRT-8601-EntropyCalibration2");
    expect(text).toContain("tiny denormal: 00000001\n");
    expect(text).toMatch(/^[^\n]*\n(?:.*: [0-9a-f]{8}\n)+$/);
    const back = parseCalibrationCache(text, "x.cache");
    expect([...back.scales.keys()]).toEqual([...scales.keys()]);
    for (const [k, v] of scales) expect(bitsOf(back.scales.get(k)!)).toBe(bitsOf(v));
    expect(formatCalibrationCache(back)).toBe(text);
  });

  it("cacheFromAmax uses scale = fround(amax/127) and the default version 8601", () => {
    const c = cacheFromAmax(new Map([["t", 1]]), "EntropyCalibration2");
    expect(c.version).toBe(DEFAULT_TRT_VERSION);
    expect(DEFAULT_TRT_VERSION).toBe("8601");
    expect(formatCalibrationCache(c)).toBe("TRT-8601-EntropyCalibration2\nt: 3c010204\n");
    expect(formatCalibrationCache(cacheFromAmax([["t", 1]], "MinMaxCalibration", "100300"))).toBe(
      "TRT-100300-MinMaxCalibration\nt: 3c010204\n",
    );
  });

  describe("malformed caches give file:line errors", () => {
    const cases: Array<[string, string, RegExp]> = [
      ["empty file", "", /^bad\.cache:1: empty calibration cache/],
      ["only blank lines", "\n\n  \n", /^bad\.cache:1: empty calibration cache/],
      ["bad header", "TRT-EntropyCalibration2\nx: 3f800000\n", /^bad\.cache:1: bad calibration cache header "TRT-EntropyCalibration2"; expected TRT-<version digits>-<Algorithm>/],
      ["not a cache", "hello world\n", /^bad\.cache:1: bad calibration cache header/],
      ["missing ': '", "TRT-8601-EntropyCalibration2\nx: 3f800000\ny:3f800000\n", /^bad\.cache:3: missing ": " in "y:3f800000"/],
      ["bad hex", "TRT-8601-EntropyCalibration2\nx: 3f80000g\n", /^bad\.cache:2: bad scale "3f80000g" for tensor "x"; expected exactly 8 hex digits/],
      ["short hex", "TRT-8601-EntropyCalibration2\nx: 3f8000\n", /^bad\.cache:2: bad scale "3f8000"/],
      ["long hex", "TRT-8601-EntropyCalibration2\nx: 3f8000000\n", /^bad\.cache:2: bad scale "3f8000000"/],
      ["empty name", "TRT-8601-EntropyCalibration2\n: 3f800000\n", /^bad\.cache:2: empty tensor name/],
      ["duplicate", "TRT-8601-EntropyCalibration2\na: 3f800000\nb: 3f800000\na: 40000000\n", /^bad\.cache:4: duplicate tensor "a" \(first on line 2\)/],
      ["NaN scale", "TRT-8601-EntropyCalibration2\nx: 7fc00000\n", /^bad\.cache:2: scale 7fc00000 of tensor "x" is NaN/],
      ["negative scale", "TRT-8601-EntropyCalibration2\nx: bf800000\n", /^bad\.cache:2: scale bf800000 of tensor "x" is -1/],
      ["infinite scale", "TRT-8601-EntropyCalibration2\nx: 7f800000\n", /^bad\.cache:2: .* is Infinity/],
    ];
    for (const [what, text, re] of cases) {
      it(what, () => expectUserError(() => parseCalibrationCache(text, "bad.cache"), re));
    }
    it("line numbers count CRLF lines and blank lines", () => {
      expectUserError(
        () => parseCalibrationCache("TRT-8601-EntropyCalibration2\r\n\r\na: 3f800000\r\nb 3f800000\r\n", "bad.cache"),
        /^bad\.cache:4: missing ": "/,
      );
    });
  });

  it("refuses to write what cannot be read back", () => {
    const w = (name: string, s = 1, version = "8601", algorithm = "EntropyCalibration2") => () =>
      formatCalibrationCache({ version, algorithm, scales: new Map([[name, s]]) });
    expectUserError(w("a\nb"), /cannot be written to a calibration cache/);
    expectUserError(w(""), /cannot be written/);
    expectUserError(w("x", Number.NaN), /scale of tensor "x" is NaN/);
    expectUserError(w("x", -1), /scale of tensor "x" is -1/);
    expectUserError(w("x", 1, "8.6.1"), /TensorRT version "8.6.1" must be digits/);
    expectUserError(w("x", 1, "8601", "Entropy-2"), /algorithm name "Entropy-2"/);
  });
});

describe("JSON sidecar", () => {
  const scales = new Map<string, number>([
    ["input", f32(0x3c010204)],
    ["(Unnamed ITensor* 38)", f32(0x3c3604b4)],
    ["7", f32(0x00000001)],
    ["a: b", f32(0x3eaaaaab)],
  ]);

  it("round-trips bit for bit and keeps tensor order in the file", () => {
    const text = calibrationJson({ version: "100300", algorithm: "MinMaxCalibration", scales });
    expect(text.endsWith("}\n")).toBe(true);
    const doc = JSON.parse(text) as {
      format: string;
      algorithm: string;
      trt_version: string;
      tensors: Record<string, { amax: number; scale: number }>;
    };
    expect(doc.format).toBe(CALIBRATION_JSON_FORMAT);
    expect(doc.format).toBe("trt-debug/calibration@1");
    expect(doc.algorithm).toBe("MinMaxCalibration");
    expect(doc.trt_version).toBe("100300");
    expect(doc.tensors.input).toEqual({ amax: 127 * f32(0x3c010204), scale: f32(0x3c010204) });
    expect(doc.tensors.input!.amax).toBeCloseTo(1, 6);
    // "7" stays third in the text even though JS objects list integer-like keys first.
    expect(text.indexOf('"7"')).toBeGreaterThan(text.indexOf('"(Unnamed ITensor* 38)"'));
    const back = parseCalibrationCache(text, "s.json");
    expect(back.source).toBe("json");
    expect([back.version, back.algorithm]).toEqual(["100300", "MinMaxCalibration"]);
    expect(back.scales.size).toBe(scales.size);
    for (const [k, v] of scales) expect(bitsOf(back.scales.get(k)!)).toBe(bitsOf(v));
    // And it converts to the TensorRT text losslessly.
    const trt = formatCalibrationCache(back);
    expect(trt).toContain("7: 00000001\n");
    expect(trt).toContain("(Unnamed ITensor* 38): 3c3604b4\n");
  });

  it("keeps the exact calibrated amax from cacheFromAmax", () => {
    const c = cacheFromAmax(new Map([["x", 0.1], ["y", 3]]), "EntropyCalibration2");
    const text = calibrationJson(c);
    expect(JSON.parse(text).tensors.x).toEqual({ amax: 0.1, scale: Math.fround(0.1 / 127) });
    const back = parseCalibrationCache(text, "s.json");
    expect(back.amax?.get("x")).toBe(0.1);
    expect(back.amax?.get("y")).toBe(3);
    expect(scaleToHex(back.scales.get("x")!)).toBe(scaleToHex(0.1 / 127));
    expectUserError(
      () => calibrationJson({ version: "8601", algorithm: "MinMaxCalibration", scales: new Map([["x", 1]]), amax: new Map([["x", 2]]) }),
      /amax 2 of tensor "x" does not match its scale 1/,
    );
  });

  it("accepts amax-only entries (scale = fround(amax/127)) and a numeric trt_version", () => {
    const c = parseCalibrationCache(
      JSON.stringify({ format: "trt-debug/calibration@1", algorithm: "EntropyCalibration2", trt_version: 8601, tensors: { x: { amax: 1 } } }),
      "s.json",
    );
    expect(c.version).toBe("8601");
    expect(scaleToHex(c.scales.get("x")!)).toBe("3c010204");
  });

  it("errors name the file (and line for syntax errors) in one line", () => {
    expectUserError(() => parseCalibrationCache('{\n  "format": "trt-debug/calibration@1",\n  oops\n}', "s.json"), /^s\.json(:3)?: invalid JSON/);
    expectUserError(() => parseCalibrationCache('{"format":"other@1"}', "s.json"), /^s\.json: "format" is "other@1", not "trt-debug\/calibration@1"/);
    const base = { format: "trt-debug/calibration@1", algorithm: "EntropyCalibration2", trt_version: "8601" };
    expectUserError(() => parseCalibrationCache(JSON.stringify({ ...base }), "s.json"), /"tensors" must be an object/);
    expectUserError(() => parseCalibrationCache(JSON.stringify({ ...base, tensors: { x: {} } }), "s.json"), /tensor "x" has neither "scale" nor "amax"/);
    expectUserError(() => parseCalibrationCache(JSON.stringify({ ...base, tensors: { x: { scale: -1 } } }), "s.json"), /"scale" must be a finite number >= 0/);
    expectUserError(
      () => parseCalibrationCache(JSON.stringify({ ...base, tensors: { x: { scale: 1, amax: 2 } } }), "s.json"),
      /"amax" 2 disagrees with 127·"scale" = 127/,
    );
    expectUserError(() => parseCalibrationCache(JSON.stringify({ ...base, trt_version: "8.6" }), "s.json"), /"trt_version" must be TensorRT version digits/);
  });
});

describe("files", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "trt-debug-calib-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("missing file → UserError naming it", async () => {
    const p = join(dir, "nope.cache");
    await expect(readCalibrationCache(p)).rejects.toThrow(UserError);
    await expect(readCalibrationCache(p)).rejects.toThrow(`${p}: calibration cache not found`);
    await expect(readCalibrationCache(dir)).rejects.toThrow(/is a directory/);
  });

  it("write and read back both formats; errors carry the path and line", async () => {
    const content = cacheFromAmax(new Map([["a", 1], ["b c: (d)", 2.5]]), "EntropyCalibration2");
    const t = join(dir, "m.cache");
    const j = join(dir, "m.json");
    await writeCalibrationCache(t, content);
    await writeCalibrationCache(j, content, "json");
    expect(await readFile(t, "utf8")).toBe(formatCalibrationCache(content));
    const a = await readCalibrationCache(t);
    const b = await readCalibrationCache(j);
    expect(a.source).toBe("tensorrt");
    expect(b.source).toBe("json");
    expect([...a.scales]).toEqual([...b.scales]);
    const bad = join(dir, "bad.cache");
    await writeFile(bad, "TRT-8601-EntropyCalibration2\na: zz\n");
    await expect(readCalibrationCache(bad)).rejects.toThrow(`${bad}:2: bad scale "zz"`);
    await expect(writeCalibrationCache(join(dir, "no", "such", "dir.cache"), content)).rejects.toThrow(UserError);
  });
});
