import { type GeneratedModel, type ModelFacts } from "./common.js";
export interface DbDetectorOptions {
    /** Input height = width (a multiple of 32). */
    size?: number;
    /** Inverted residual blocks per stage (4 stages). */
    blocks?: [number, number, number, number];
    /** Plant the fp16 overflow (default true). */
    plant?: boolean;
    seed?: number;
}
export interface DbDetectorFacts extends ModelFacts {
    params: number;
    /** The planted culprit's conv (null without a plant). */
    planted: string | null;
}
export declare function dbDetector(o?: DbDetectorOptions): GeneratedModel<DbDetectorFacts>;
