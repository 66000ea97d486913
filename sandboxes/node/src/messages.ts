/**
 * The messages of `polyhost.runtime.v1`, as @grpc/proto-loader presents them with the options in
 * `proto.ts` (field names as in the .proto file, enums as their names, 64-bit integers as strings,
 * defaults filled in, and a virtual `event` field naming the member of the oneof that is set).
 */

/** `DescribeRequest`: asks a sidecar for its node types. */
export interface DescribeRequest {
  /** The host's protocol version, e.g. "1.0". */
  protocol_version: string;
}

/** `DescribeResponse`: the sidecar and the node types it offers. */
export interface DescribeResponse {
  /** The sidecar's protocol version, e.g. "1.0". */
  protocol_version: string;
  /** The sidecar's own name, for logs. */
  name: string;
  /** The SDK that serves it, e.g. "polyhost-node/0.1.0". */
  sdk: string;
  node_types: NodeTypeSpec[];
}

/** `NodeTypeSpec`: one node type with its metadata and schemas. */
export interface NodeTypeSpec {
  /** e.g. "text.slugify"; unique within the host. */
  type: string;
  description: string;
  /** JSON Schema of the parameters as JSON text ("" = any object). */
  input_schema_json: string;
  /** JSON Schema of the output as JSON text ("" = any object). */
  output_schema_json: string;
  /** Output ports besides "out" and "error". */
  ports: string[];
  /** The output field that names the port taken, if any. */
  port_field: string;
  metadata: Record<string, string>;
  /** The host may call Run instead of Execute (since 1.1). */
  unary: boolean;
}

/** `ExecuteRequest`: runs one attempt of one node (the request of Execute and of Run). */
export interface ExecuteRequest {
  protocol_version: string;
  node_type: string;
  /** A JSON object. */
  params_json: string;
  /** Absent (null) when the host sent none. */
  context: NodeContext | null;
}

/** `NodeContext`: where an attempt belongs. */
export interface NodeContext {
  run_id: string;
  workflow_id: string;
  node_id: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** The same across attempts and across a crash of the host. */
  idempotency_key: string;
  /** Seconds since the epoch; 0 = none (gRPC's deadline is also set). */
  deadline_unix: number;
}

/** The names of `Log.Level`. */
export type LogLevelName = "LEVEL_UNSPECIFIED" | "DEBUG" | "INFO" | "WARNING" | "ERROR";

/** `Log`: a log line from the node. */
export interface LogEvent {
  level: LogLevelName;
  message: string;
}

/** `Chunk`: a piece of streamed output. */
export interface ChunkEvent {
  /** Any JSON value, as JSON text. */
  data_json: string;
}

/** `Progress`: how far the node has got. */
export interface ProgressEvent {
  /** 0..1 */
  fraction: number;
  message: string;
}

/** `Result`: the node's output; the last event of a successful call. */
export interface ResultEvent {
  /** A JSON object, as JSON text. */
  output_json: string;
}

/** `Error`: the node failed; the last event of a failed call. */
export interface ErrorEvent {
  /** Stable, snake_case, e.g. "invalid_input". */
  code: string;
  message: string;
  /** The parameter at fault, if any ("" = none). */
  field: string;
  retryable: boolean;
}

/** The name of the member of `ExecuteEvent.event` that is set. */
export type ExecuteEventKind = "log" | "chunk" | "progress" | "result" | "error";

/**
 * `ExecuteEvent`: one event of an Execute stream. A sidecar sets exactly one member; a reader also
 * gets `event`, naming it.
 */
export interface ExecuteEvent {
  event?: ExecuteEventKind;
  log?: LogEvent | null;
  chunk?: ChunkEvent | null;
  progress?: ProgressEvent | null;
  result?: ResultEvent | null;
  error?: ErrorEvent | null;
}

/** `RunReply`: the answer to Run, every event Execute would have streamed, in order (since 1.1). */
export interface RunReply {
  events: ExecuteEvent[];
}

/** `grpc.health.v1.HealthCheckRequest`. */
export interface HealthCheckRequest {
  service: string;
}

/** The names of `grpc.health.v1.HealthCheckResponse.ServingStatus`. */
export type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

/** `grpc.health.v1.HealthCheckResponse`. */
export interface HealthCheckResponse {
  status: ServingStatus;
}
