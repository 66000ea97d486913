import * as grpc from "@grpc/grpc-js";
import { hasValidToken } from "./auth";
import { CallRun, deadlineOf, type EventSink } from "./call";
import { describeJsonKind, isPlainObject } from "./json";
import type { Logger } from "./log";
import type {
  DescribeRequest,
  DescribeResponse,
  ErrorEvent,
  ExecuteEvent,
  ExecuteRequest,
  NodeTypeSpec,
  RunReply,
} from "./messages";
import type { RegisteredNodeType } from "./node-type";
import { protocolMismatch, SDK_NAME } from "./protocol";

/** What the NodeRuntime service needs from the server that hosts it. */
export interface RuntimeServiceContext {
  readonly name: string;
  readonly nodes: ReadonlyMap<string, RegisteredNodeType>;
  /** Reported as `protocol_version` by Describe. */
  readonly reportedProtocolVersion: string;
  /** "" = no token required. */
  readonly token: string;
  readonly log: Logger;
  /** True once the server is stopping: new calls are refused. */
  isStopping(): boolean;
  /** Keeps track of a running call until it is over. */
  track(run: CallRun): void;
}

type Refusal = Partial<grpc.StatusObject> & { code: grpc.status; details: string };

/** What to do with an Execute or Run request: refuse the RPC, answer one Error event, or run. */
type Plan =
  | { kind: "refuse"; refusal: Refusal }
  | { kind: "error"; error: ErrorEvent }
  | { kind: "run"; node: RegisteredNodeType; params: Record<string, unknown> };

/** The `polyhost.runtime.v1.NodeRuntime` implementation: Describe, Execute and Run. */
export function runtimeImplementation(ctx: RuntimeServiceContext): grpc.UntypedServiceImplementation {
  /** Checks the token, the server's state and the protocol version; returns the refusal, if any. */
  const refusal = (metadata: grpc.Metadata, protocolVersion: string): Refusal | null => {
    if (!hasValidToken(metadata, ctx.token)) {
      return { code: grpc.status.UNAUTHENTICATED, details: "missing or wrong sidecar token (metadata authorization: Bearer <token>)" };
    }
    if (ctx.isStopping()) return { code: grpc.status.UNAVAILABLE, details: "the sidecar is shutting down" };
    const mismatch = protocolMismatch(protocolVersion);
    if (mismatch !== null) return { code: grpc.status.FAILED_PRECONDITION, details: mismatch };
    return null;
  };

  const plan = (metadata: grpc.Metadata, request: ExecuteRequest): Plan => {
    const refused = refusal(metadata, request.protocol_version);
    if (refused !== null) return { kind: "refuse", refusal: refused };
    const node = ctx.nodes.get(request.node_type);
    if (node === undefined) {
      const known = [...ctx.nodes.keys()];
      return {
        kind: "error",
        error: {
          code: "unknown_node_type",
          message: `unknown node type ${JSON.stringify(request.node_type)}; sidecar ${JSON.stringify(ctx.name)} offers ${
            known.length === 0 ? "none" : known.join(", ")
          }`,
          field: "",
          retryable: false,
        },
      };
    }
    const params = parseParams(request.params_json);
    if (typeof params === "string") {
      return { kind: "error", error: { code: "invalid_parameters", message: params, field: "", retryable: false } };
    }
    return { kind: "run", node, params };
  };

  const start = (sink: EventSink, node: RegisteredNodeType, params: Record<string, unknown>): void => {
    const run = new CallRun(sink, node, params, ctx.log);
    ctx.track(run);
    run.start();
  };

  return {
    Describe: (call: grpc.ServerUnaryCall<DescribeRequest, DescribeResponse>, callback: grpc.sendUnaryData<DescribeResponse>) => {
      const refused = refusal(call.metadata, call.request.protocol_version);
      if (refused !== null) {
        callback(refused);
        return;
      }
      callback(null, describeResponse(ctx));
    },

    Execute: (stream: grpc.ServerWritableStream<ExecuteRequest, ExecuteEvent>) => {
      const decided = plan(stream.metadata, stream.request);
      switch (decided.kind) {
        case "refuse":
          stream.emit("error", decided.refusal);
          return;
        case "error":
          stream.write({ error: decided.error });
          stream.end();
          return;
        case "run":
          start(
            {
              request: stream.request,
              deadlineMs: deadlineOf(stream),
              write: (event) => stream.write(event),
              end: () => stream.end(),
              onCancelled: (listener) => stream.on("cancelled", listener),
            },
            decided.node,
            decided.params,
          );
      }
    },

    Run: (call: grpc.ServerUnaryCall<ExecuteRequest, RunReply>, callback: grpc.sendUnaryData<RunReply>) => {
      const decided = plan(call.metadata, call.request);
      switch (decided.kind) {
        case "refuse":
          callback(decided.refusal);
          return;
        case "error":
          callback(null, { events: [{ error: decided.error }] });
          return;
        case "run": {
          const events: ExecuteEvent[] = [];
          start(
            {
              request: call.request,
              deadlineMs: deadlineOf(call),
              write: (event) => events.push(event),
              end: () => callback(null, { events }),
              onCancelled: (listener) => call.on("cancelled", listener),
            },
            decided.node,
            decided.params,
          );
        }
      }
    },
  };
}

/** The Describe answer for a sidecar. */
export function describeResponse(ctx: Pick<RuntimeServiceContext, "name" | "nodes" | "reportedProtocolVersion">): DescribeResponse {
  const nodeTypes: NodeTypeSpec[] = [...ctx.nodes.values()].map((node) => ({
    ...node.spec,
    ports: [...node.spec.ports],
    metadata: { ...node.spec.metadata },
  }));
  return { protocol_version: ctx.reportedProtocolVersion, name: ctx.name, sdk: SDK_NAME, node_types: nodeTypes };
}

/** The params as an object, or the message saying why they are not one. */
function parseParams(text: string): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `params_json is not valid JSON: ${(error as Error).message}`;
  }
  if (!isPlainObject(value)) return `params_json must be a JSON object, got ${describeJsonKind(value)}`;
  return value;
}
