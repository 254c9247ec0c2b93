/** Where a run's input tensors come from: the options every model workflow shares (docs/inputs.md). */
export interface InputArgs {
  seed?: number | string;
  valRange?: readonly string[];
  inputShapes?: readonly string[];
  loadInputs?: readonly string[];
  saveInputs?: string;
  /** --image-preprocess: how images given to --load-inputs become tensors (docs/inputs.md). */
  imagePreprocess?: readonly string[];
  /** --data-loader-script: a JS module yielding input sets. */
  dataLoaderScript?: string;
}
