import { writeBigExternalModel } from "./models/big-external.js";
const [dir, kind] = process.argv.slice(2);
const t0 = performance.now();
const f = writeBigExternalModel(dir!, kind === "tr" ? { transposed: true, stem: "big_tr" } : kind === "trtyped" ? { transposed: true, weightType: "float16", stem: "big_trtyped" } : { stem: "big_fp32" });
console.log(JSON.stringify({ ...f, s: (performance.now() - t0) / 1000 }));
