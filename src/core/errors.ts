/**
 * Errors a user can cause (bad file, bad flag, unsupported model feature).
 * The CLI prints `message` as one line and exits with code 2; the library never exits.
 */
export class UserError extends Error {
  override readonly name = "UserError";
  /** Process exit code the CLI uses for this error. */
  readonly exitCode = 2;
  /**
   * The library option the error is about (e.g. "segmentLayers"), when it is about one: the
   * message then starts with `${option}:`. The CLI rewrites that prefix to the flag's spelling
   * (cli/options.ts OPTION_FLAGS), so a library caller reads option names and a CLI user flags.
   */
  readonly option?: string;
  constructor(message: string, option?: string) {
    super(message);
    if (option !== undefined) this.option = option;
  }
}

/** A UserError about `option`: the message is `${option}: ${detail}`. */
export function optionError(option: string, detail: string): UserError {
  return new UserError(`${option}: ${detail}`, option);
}

