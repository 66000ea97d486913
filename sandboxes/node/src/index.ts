/**
 * Write polyhost node types in TypeScript and serve them from a sidecar process.
 *
 * ```ts
 * import { Sidecar, NodeError } from "@polyhost/sidecar";
 *
 * const sidecar = new Sidecar("text");
 * sidecar.node({ type: "text.upper", description: "Upper-cases text" }, async (params, call) => {
 *   if (typeof params.text !== "string") throw new NodeError("invalid_input", "text must be a string", { field: "text" });
 *   call.log("info", `upper-casing ${params.text.length} characters`);
 *   return { text: params.text.toUpperCase() };
 * });
 * await sidecar.serve();
 * ```
 */
export { Sidecar, type SidecarOptions } from "./sidecar";
export { NodeError, type NodeErrorOptions } from "./node-error";
export type { NodeCall, CallContext, LogLevel } from "./call";
export type { NodeTypeDefinition, NodeHandler, JsonSchema } from "./node-type";
export type { StartOptions, ServeOptions, TlsFiles } from "./config";
export type { RunningSidecar } from "./server";
export type { JsonValue, JsonObject } from "./json";
export type * as messages from "./messages";
export { ListenError, DEFAULT_LISTEN } from "./listen";
export { READY_PREFIX } from "./serve";
export { PROTOCOL_VERSION, SDK_NAME, SDK_VERSION } from "./protocol";
export {
  PROTO_LOADER_OPTIONS,
  protoDir,
  loadProtos,
  runtimeClientConstructor,
  healthClientConstructor,
} from "./proto";
