const BRAND = Symbol.for("polyhost.sidecar.NodeError");

/** Options of a {@link NodeError}. */
export interface NodeErrorOptions {
  /** The parameter at fault, if any (e.g. "top"). */
  field?: string;
  /** Whether another attempt may succeed (default false). */
  retryable?: boolean;
  /** The underlying error, kept for logs; it is not sent to the host. */
  cause?: unknown;
}

/**
 * A typed failure of a node. Throw it from a handler to end the call with an `Error` event that
 * carries exactly this code, message, field and retryable flag:
 *
 * ```ts
 * throw new NodeError("invalid_input", "top must be at least 1", { field: "top" });
 * ```
 *
 * Any other exception a handler throws becomes `Error{code: "handler_error"}`.
 */
export class NodeError extends Error {
  /** Stable, snake_case, e.g. "invalid_input". */
  readonly code: string;
  /** The parameter at fault, or "". */
  readonly field: string;
  /** Whether another attempt may succeed. */
  readonly retryable: boolean;

  constructor(code: string, message: string, options: NodeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "NodeError";
    this.code = code;
    this.field = options.field ?? "";
    this.retryable = options.retryable ?? false;
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** True for a NodeError, also one made by another copy of this package. */
  static is(value: unknown): value is NodeError {
    return (
      value instanceof NodeError ||
      (typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true)
    );
  }
}
