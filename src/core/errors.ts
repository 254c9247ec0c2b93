/**
 * Errors a user can cause (bad file, bad flag, unsupported model feature).
 * The CLI prints the message as one line, options spelled as flags (cli/options.ts
 * flagMessage), and exits with code 2; the library never exits.
 */
export class UserError extends Error {
  override readonly name = "UserError";
  /** Process exit code the CLI uses for this error. */
  readonly exitCode = 2;
  /**
   * The library option the error is about (e.g. "segmentLayers"), when it is about one: the
   * message then starts with it (`${option}:` or `${option} VALUE:`). The CLI rewrites that prefix to the flag's spelling
   * (cli/options.ts OPTION_FLAGS), so a library caller reads option names and a CLI user flags.
   */
  readonly option?: string;
  /**
   * The message in pieces, options kept apart (see `userError`), when it names options beyond a
   * leading one; the CLI joins the pieces with each option spelled as its flag.
   */
  readonly parts?: readonly MessagePart[];
  constructor(message: string, option?: string, parts?: readonly MessagePart[]) {
    super(message);
    if (option !== undefined) this.option = option;
    if (parts !== undefined) this.parts = parts;
  }
}

/** A UserError about `option`: the message is `${option}: ${detail}`. */
export function optionError(option: string, detail: string): UserError {
  return new UserError(`${option}: ${detail}`, option);
}

/**
 * A library option named inside a UserError's text (see `userError`): the library spells it by
 * its name, the CLI by its flag (cli/options.ts OPTION_FLAGS).
 */
export class OptionRef {
  constructor(
    readonly name: string,
    /** How the library's message spells it (the name, or e.g. `precision "fp16"` for a value of one). */
    readonly text: string = name,
  ) {}
  toString(): string {
    return this.text;
  }
}

/**
 * A reference to the library option `name`, for `userError` texts; `text` spells it in the
 * library's message when the name alone is not it (a value of an option: the CLI has a flag
 * for it, `opt("precision.fp16", 'precision "fp16"')` is `--fp16`).
 */
export function opt(name: string, text?: string): OptionRef {
  return new OptionRef(name, text);
}

/** A precision as an option value (`precision "fp16"`); the CLI has a flag for each (--fp16). */
export function precisionRef(p: string): OptionRef {
  return opt(`precision.${p}`, `precision "${p}"`);
}

/** A piece of a UserError's text: literal text, or an option the reader's tool spells its own way. */
export type MessagePart = string | OptionRef;

/**
 * A UserError whose text names options, as a tagged template:
 * userError`${opt("calibData")} and ${opt("loadInputs")}: give the calibration data once`.
 * `message` spells each option by its name ("calibData and loadInputs: ..."); `parts` keeps the
 * options apart, so the CLI prints "--calib-data and --load-inputs: ..." (cli/options.ts
 * flagMessage). A text that starts with an option is about it (`option`). Other values are
 * interpolated as text, except a UserError, whose own parts are kept, and an array of parts.
 */
export function userError(text: TemplateStringsArray, ...values: unknown[]): UserError {
  const { message, parts } = optionText(text, ...values);
  const lead = parts[0] instanceof OptionRef ? parts[0].name : undefined;
  return new UserError(message, lead, parts);
}

/**
 * A text that names options, as `userError` builds it but not thrown: for warnings
 * (core/hooks.ts `Warn`: `warn(w.message, w.parts)`), which the CLI prints with flags.
 */
export function optionText(text: TemplateStringsArray, ...values: unknown[]): { message: string; parts: MessagePart[] } {
  const parts: MessagePart[] = [];
  const push = (p: MessagePart): void => {
    if (typeof p !== "string") parts.push(p);
    else if (typeof parts[parts.length - 1] === "string") parts[parts.length - 1] = (parts[parts.length - 1] as string) + p;
    else if (p !== "") parts.push(p);
  };
  text.forEach((s, i) => {
    push(s);
    if (i >= values.length) return;
    const v = values[i];
    if (v instanceof OptionRef) push(v);
    else if (v instanceof UserError) for (const p of partsOf(v)) push(p);
    else if (Array.isArray(v)) for (const p of v) push(p instanceof OptionRef ? p : String(p));
    else push(String(v));
  });
  return { message: parts.join(""), parts };
}

/** The parts of `e`'s message: its own, else its leading option apart from the rest. */
function partsOf(e: UserError): readonly MessagePart[] {
  if (e.parts) return e.parts;
  const o = e.option;
  return o !== undefined && e.message.startsWith(o) ? [opt(o), e.message.slice(o.length)] : [e.message];
}

/**
 * `e`, about `option` when its message starts with the option's name: for errors raised below
 * a caller that put the name in front of every message it passes down (`where` prefixes such as
 * "loadInputs x.npy"), so the CLI can spell it as a flag. Anything else is returned as is.
 */
export function aboutOption(e: unknown, option: string): unknown {
  if (!(e instanceof UserError) || e.option !== undefined) return e;
  const rest = e.message.slice(option.length);
  if (!e.message.startsWith(option) || !(rest.startsWith(":") || rest.startsWith(" "))) return e;
  if (!e.parts) return new UserError(e.message, option);
  const [first, ...more] = e.parts;
  return typeof first === "string" && first.startsWith(option) ? new UserError(e.message, option, [opt(option), first.slice(option.length), ...more]) : e;
}

/** `f()`, its UserErrors marked as about `option` (see aboutOption). */
export function aboutOptionOf<T>(option: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw aboutOption(e, option);
  }
}
