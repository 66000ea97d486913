/** The protocol version this SDK speaks (see runtime.proto): 1.1 added Run and NodeTypeSpec.unary. */
export const PROTOCOL_VERSION = "1.1";

/** The major version this SDK accepts in requests. */
export const PROTOCOL_MAJOR = "1";

/** This SDK's version; kept equal to the package's version. */
export const SDK_VERSION = "0.1.0";

/** What Describe reports as `sdk`. */
export const SDK_NAME = `polyhost-node/${SDK_VERSION}`;

/**
 * Checks a request's protocol version. Returns null when its major version (the text before the
 * first '.') is ours, else the message for a FAILED_PRECONDITION answer.
 */
export function protocolMismatch(requested: string): string | null {
  const dot = requested.indexOf(".");
  const major = dot < 0 ? requested : requested.slice(0, dot);
  if (major === PROTOCOL_MAJOR) return null;
  return `protocol version ${requested} is not supported; this sidecar speaks ${PROTOCOL_VERSION}`;
}
