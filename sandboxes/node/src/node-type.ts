import type { NodeCall } from "./call";
import type { NodeTypeSpec } from "./messages";

/** A JSON Schema, as an object or as JSON text. */
export type JsonSchema = Record<string, unknown> | string;

/** What a sidecar says about one of its node types (sent to the host by Describe). */
export interface NodeTypeDefinition {
  /** The node type, e.g. "text.slugify"; unique within the host, so give it a prefix. */
  type: string;
  /** One line for people reading the host's catalog. */
  description?: string;
  /** JSON Schema of the parameters (an object, or JSON text); omitted = any object. */
  inputSchema?: JsonSchema;
  /** JSON Schema of the output (an object, or JSON text); omitted = any object. */
  outputSchema?: JsonSchema;
  /** Output ports besides "out" and "error". */
  ports?: string[];
  /** The output field that names the port taken, if any. */
  portField?: string;
  /** Free-form string metadata. */
  metadata?: Record<string, string>;
  /**
   * Lets the host call this node type with one unary `Run` call instead of an `Execute` stream:
   * cheaper for quick nodes, but its logs, chunks and progress then reach the host together with
   * the result instead of as they happen. Default false.
   */
  unary?: boolean;
}

/**
 * A node's code: gets the parameters (a JSON object, already checked by the host against
 * `inputSchema`) and the call, and returns (or resolves to) the output object. Throw a
 * {@link NodeError} to fail with a typed error.
 */
export type NodeHandler<Params = Record<string, any>, Output extends object = Record<string, unknown>> = (
  params: Params,
  call: NodeCall,
) => Output | Promise<Output>;

/** A registered node type. */
export interface RegisteredNodeType {
  readonly spec: NodeTypeSpec;
  readonly handler: NodeHandler<any, object>;
}

/** Checks a definition and turns it into the spec that Describe sends. Throws on mistakes. */
export function buildSpec(definition: NodeTypeDefinition): NodeTypeSpec {
  if (typeof definition !== "object" || definition === null) {
    throw new TypeError("a node type definition must be an object");
  }
  const type = definition.type;
  if (typeof type !== "string" || type.trim() === "" || type.trim() !== type) {
    throw new TypeError(`node type name must be a non-empty string without surrounding spaces, got ${JSON.stringify(type)}`);
  }
  const ports = definition.ports ?? [];
  if (!Array.isArray(ports) || !ports.every((p) => typeof p === "string" && p !== "")) {
    throw new TypeError(`${type}: ports must be a list of non-empty strings`);
  }
  const metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(definition.metadata ?? {})) {
    if (typeof value !== "string") throw new TypeError(`${type}: metadata.${key} must be a string`);
    metadata[key] = value;
  }
  return {
    type,
    description: definition.description ?? "",
    input_schema_json: schemaText(type, "inputSchema", definition.inputSchema),
    output_schema_json: schemaText(type, "outputSchema", definition.outputSchema),
    ports: [...ports],
    port_field: definition.portField ?? "",
    metadata,
    unary: definition.unary === true,
  };
}

/** A schema as JSON text: objects are serialized, text must parse to a JSON object, none is "". */
function schemaText(type: string, name: string, schema: JsonSchema | undefined): string {
  if (schema === undefined || schema === "") return "";
  if (typeof schema === "string") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(schema);
    } catch (error) {
      throw new TypeError(`${type}: ${name} is not valid JSON: ${(error as Error).message}`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new TypeError(`${type}: ${name} must be a JSON object`);
    }
    return schema;
  }
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw new TypeError(`${type}: ${name} must be an object or JSON text`);
  }
  return JSON.stringify(schema);
}
