/**
 * Errors a user can cause (bad file, bad flag, unsupported model feature).
 * The CLI prints `message` as one line and exits with code 2; the library never exits.
 */
export class UserError extends Error {
  override readonly name = "UserError";
  /** Process exit code the CLI uses for this error. */
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
  }
}

/** Throw a UserError unless `cond` holds. */
export function userAssert(cond: unknown, message: string): asserts cond {
  if (!cond) throw new UserError(message);
}
