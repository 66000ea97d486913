/**
 * The testkit sidecar: `ts.*` node types that misbehave on request, for the host's fault tests.
 *
 * Switches, read from the environment at start:
 * - POLYHOST_TESTKIT_EXIT_AT_START=N: exit with status N before listening;
 * - POLYHOST_TESTKIT_START_DELAY_MS=MS: wait that long before listening;
 * - POLYHOST_TESTKIT_PROTOCOL=V: report protocol version V in Describe instead of 1.0.
 */
import { NodeError, Sidecar } from "@polyhost/sidecar";

const env = process.env;
const reportedProtocol = env.POLYHOST_TESTKIT_PROTOCOL ?? "";
const sidecar = new Sidecar("testkit", reportedProtocol !== "" ? { reportProtocolVersion: reportedProtocol } : {});

/** An integer parameter, or a typed invalid_input error naming it. */
function intParam(params: Record<string, unknown>, name: string, fallback?: number, min = 0): number {
  const value = params[name] ?? fallback;
  if (value === undefined) throw new NodeError("invalid_input", `${name} is required`, { field: name });
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new NodeError("invalid_input", `${name} must be an integer of at least ${min}, got ${JSON.stringify(value)}`, {
      field: name,
    });
  }
  return value;
}

const intSchema = (name: string) => ({
  type: "object",
  properties: { [name]: { type: "integer", minimum: 0 } },
});

sidecar.node(
  { type: "ts.echo", description: "Returns its parameters and the call's context.", unary: true },
  async (params, call) => {
    const ctx = call.context;
    return {
      params,
      context: {
        run_id: ctx.runId,
        workflow_id: ctx.workflowId,
        node_id: ctx.nodeId,
        attempt: ctx.attempt,
        idempotency_key: ctx.idempotencyKey,
      },
    };
  },
);

sidecar.node(
  { type: "ts.sleep", description: "Waits `ms` milliseconds (ends early with a cancelled error).", inputSchema: intSchema("ms") },
  async (params, call) => {
    const ms = intParam(params, "ms", 0);
    await call.sleep(ms);
    return { slept_ms: ms };
  },
);

sidecar.node({ type: "ts.hang", description: "Never returns and ignores cancellation." }, () => new Promise<never>(() => undefined));

sidecar.node(
  { type: "ts.crash", description: "Logs, waits `after_ms`, then kills the whole process (status 3).", inputSchema: intSchema("after_ms") },
  async (params, call) => {
    const afterMs = intParam(params, "after_ms", 0);
    call.log("warning", `crashing the sidecar in ${afterMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, afterMs));
    process.exit(3);
  },
);

sidecar.node(
  { type: "ts.big", description: "Returns `bytes` 'x' characters as data.", inputSchema: intSchema("bytes"), unary: true },
  async (params) => ({ data: "x".repeat(intParam(params, "bytes")) }),
);

sidecar.node(
  { type: "ts.stream", description: "Sends n logs, n chunks and n progress reports, then {n}.", inputSchema: intSchema("n") },
  async (params, call) => {
    const n = intParam(params, "n", 0);
    for (let i = 1; i <= n; i++) {
      call.log("info", `line ${i}`);
      call.chunk({ i });
      call.progress(i / n);
    }
    return { n };
  },
);

sidecar.node(
  {
    type: "ts.fail",
    unary: true,
    description: "Fails with the typed error given by code, message, field and retryable.",
    inputSchema: {
      type: "object",
      properties: {
        code: { type: "string" },
        message: { type: "string" },
        field: { type: "string" },
        retryable: { type: "boolean" },
      },
    },
  },
  async (params) => {
    const text = (name: string, fallback: string): string => (typeof params[name] === "string" ? (params[name] as string) : fallback);
    throw new NodeError(text("code", "failed"), text("message", "failed on request"), {
      field: text("field", ""),
      retryable: params.retryable === true,
    });
  },
);

sidecar.node(
  { type: "ts.pid", description: "Returns the sidecar's process id.", unary: true },
  async () => ({ pid: process.pid }),
);

void sidecar.serve({
  beforeListen: async () => {
    const exitAt = env.POLYHOST_TESTKIT_EXIT_AT_START ?? "";
    if (exitAt !== "") {
      process.stderr.write(`sidecar testkit: exiting with status ${exitAt} before listening (POLYHOST_TESTKIT_EXIT_AT_START)\n`);
      process.exit(Number.parseInt(exitAt, 10) || 0);
    }
    const delay = Number.parseInt(env.POLYHOST_TESTKIT_START_DELAY_MS ?? "", 10);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  },
});
