/** A real server (unix socket and 127.0.0.1:0) called with a real gRPC client. */
import { strict as assert } from "node:assert";
import { statSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { NodeError, type RunningSidecar, Sidecar } from "../src/index";
import { bearer, errorOf, outputOf, rpcError, TestClient, tempDir } from "./helpers";

/** What the cancellation tests learn from inside the handler. */
const seen = new Map<string, Promise<unknown>>();
function expectAbort(key: string): (signal: AbortSignal) => void {
  let resolve!: (reason: unknown) => void;
  seen.set(key, new Promise((r) => (resolve = r)));
  return (signal) => signal.addEventListener("abort", () => resolve(signal.reason), { once: true });
}

/** The sidecars' own log lines (kept out of the test output). */
const logLines: string[] = [];

function makeSidecar(): Sidecar {
  const sidecar = new Sidecar("unit", { logger: (line) => logLines.push(line) });
  sidecar.node(
    {
      type: "t.echo",
      description: "echoes",
      inputSchema: { type: "object", properties: { x: { type: "integer" } } },
      outputSchema: '{"type":"object"}',
      ports: ["left", "right"],
      portField: "port",
      metadata: { owner: "tests" },
      unary: true,
    },
    async (params, call) => ({ params, context: { ...call.context, deadline: call.context.deadline?.toISOString() ?? null } }),
  );
  sidecar.node({ type: "t.stream" }, async (params, call) => {
    const n = params.n as number;
    for (let i = 1; i <= n; i++) {
      call.log("info", `line ${i}`);
      call.chunk({ i });
      call.progress(i / n, `step ${i}`);
    }
    return { n };
  });
  sidecar.node({ type: "t.fail" }, async () => {
    throw new NodeError("invalid_input", "top must be at least 1", { field: "top", retryable: true });
  });
  sidecar.node({ type: "t.throw" }, () => {
    throw new Error("kaput");
  });
  sidecar.node({ type: "t.throw-string" }, async () => {
    throw "plain text";
  });
  sidecar.node({ type: "t.array" }, async () => [1, 2, 3] as unknown as object);
  sidecar.node({ type: "t.bad-chunk" }, async (_params, call) => {
    call.chunk(undefined);
    return {};
  });
  sidecar.node({ type: "t.sleep" }, async (params, call) => {
    await call.sleep(params.ms as number);
    return { slept_ms: params.ms };
  });
  sidecar.node({ type: "t.wait-abort" }, async (params, call) => {
    const record = seen.has(params.key) ? undefined : expectAbort(params.key as string);
    record?.(call.signal);
    await call.sleep(60_000);
    return {};
  });
  sidecar.node({ type: "t.ignore-abort" }, async (params, call) => {
    expectAbort(params.key as string)(call.signal);
    await new Promise((resolve) => setTimeout(resolve, params.ms as number).unref());
    return { late: true };
  });
  return sidecar;
}

describe("over a unix socket", () => {
  const tmp = tempDir();
  const socket = path.join(tmp.dir, "unit.sock");
  let running: RunningSidecar;
  let client: TestClient;

  before(async () => {
    running = await makeSidecar().start({ listen: `unix:${socket}` });
    client = new TestClient(running.address);
  });
  after(async () => {
    client.close();
    await running.stop();
    tmp.remove();
  });

  test("the address is the socket, readable by its owner only", () => {
    assert.equal(running.address, `unix:${socket}`);
    assert.equal(running.port, null);
    assert.equal(statSync(socket).mode & 0o777, 0o600);
  });

  test("Describe reports the version, the SDK and every node type with its schemas", async () => {
    const response = await client.describe("1.1");
    assert.equal(response.protocol_version, "1.1");
    assert.equal(response.name, "unit");
    assert.equal(response.sdk, "polyhost-node/0.1.0");
    assert.deepEqual(
      response.node_types.map((t) => t.type),
      ["t.echo", "t.stream", "t.fail", "t.throw", "t.throw-string", "t.array", "t.bad-chunk", "t.sleep", "t.wait-abort", "t.ignore-abort"],
    );
    const echo = response.node_types[0]!;
    assert.equal(echo.description, "echoes");
    assert.deepEqual(JSON.parse(echo.input_schema_json), { type: "object", properties: { x: { type: "integer" } } });
    assert.equal(echo.output_schema_json, '{"type":"object"}');
    assert.deepEqual(echo.ports, ["left", "right"]);
    assert.equal(echo.port_field, "port");
    assert.deepEqual(echo.metadata, { owner: "tests" });
    assert.equal(echo.unary, true);
    const stream = response.node_types[1]!;
    assert.equal(stream.unary, false);
    assert.equal(stream.input_schema_json, "");
    assert.equal(stream.output_schema_json, "");
  });

  test("Describe accepts any 1.x and refuses another major version", async () => {
    assert.equal((await client.describe("1.0")).protocol_version, "1.1");
    assert.equal((await client.describe("1.7")).protocol_version, "1.1");
    const error = await rpcError(client.describe("2.0"));
    assert.equal(error.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(error.details, "protocol version 2.0 is not supported; this sidecar speaks 1.1");
    assert.equal((await rpcError(client.describe("10"))).code, grpc.status.FAILED_PRECONDITION);
  });

  test("echo gets the params and the context", async () => {
    const deadline = Date.now() / 1000 + 30;
    const outcome = await client.execute("t.echo", { x: 1, nested: { y: [true, null] } }, { context: { attempt: 2, deadline_unix: deadline } });
    assert.equal(outcome.status.code, grpc.status.OK);
    const output = outputOf(outcome);
    assert.deepEqual(output.params, { x: 1, nested: { y: [true, null] } });
    assert.equal(output.context.nodeType, "t.echo");
    assert.equal(output.context.runId, "run-1");
    assert.equal(output.context.workflowId, "wf-1");
    assert.equal(output.context.nodeId, "node-1");
    assert.equal(output.context.attempt, 2);
    assert.equal(output.context.idempotencyKey, "key-1");
    assert.equal(output.context.deadline, new Date(deadline * 1000).toISOString());
  });

  test("messages up to 64 MiB go through", async () => {
    const big = "x".repeat(6 * 1024 * 1024);
    assert.equal(outputOf(await client.execute("t.echo", { big })).params.big.length, big.length);
  });

  test("logs, chunks and progress arrive at once and in order, the result last", async () => {
    const outcome = await client.execute("t.stream", { n: 3 });
    const kinds = outcome.events.map((e) => e.event);
    assert.deepEqual(kinds, ["log", "chunk", "progress", "log", "chunk", "progress", "log", "chunk", "progress", "result"]);
    assert.deepEqual(outcome.events[0]!.log, { level: "INFO", message: "line 1" });
    assert.deepEqual(JSON.parse(outcome.events[4]!.chunk!.data_json), { i: 2 });
    assert.deepEqual(outcome.events[8]!.progress, { fraction: 1, message: "step 3" });
    assert.deepEqual(outputOf(outcome), { n: 3 });
  });

  test("a NodeError becomes a typed Error event", async () => {
    const outcome = await client.execute("t.fail");
    assert.equal(outcome.status.code, grpc.status.OK);
    assert.deepEqual(errorOf(outcome), { code: "invalid_input", message: "top must be at least 1", field: "top", retryable: true });
  });

  test("an unknown node type is an Error event naming it and the known ones", async () => {
    const outcome = await client.execute("t.nope");
    assert.equal(outcome.status.code, grpc.status.OK);
    assert.equal(outcome.events.length, 1);
    const error = errorOf(outcome);
    assert.equal(error.code, "unknown_node_type");
    assert.equal(error.retryable, false);
    assert.match(error.message, /"t\.nope"/);
    assert.match(error.message, /t\.echo, t\.stream/);
  });

  test("params that are not a JSON object are invalid_parameters", async () => {
    for (const paramsJson of ["{not json", "[1,2]", "42", "null", ""]) {
      const outcome = await client.execute("t.echo", undefined, { paramsJson });
      assert.equal(outcome.status.code, grpc.status.OK);
      const error = errorOf(outcome);
      assert.equal(error.code, "invalid_parameters", paramsJson);
      assert.equal(error.field, "");
    }
  });

  test("Execute refuses another major version", async () => {
    const outcome = await client.execute("t.echo", {}, { protocolVersion: "2.1" });
    assert.equal(outcome.status.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(outcome.status.details, "protocol version 2.1 is not supported; this sidecar speaks 1.1");
    assert.equal(outcome.events.length, 0);
    const run = await client.run("t.echo", {}, { protocolVersion: "0.9" });
    assert.equal(run.status.code, grpc.status.FAILED_PRECONDITION);
  });

  test("Run answers once with the events Execute would have streamed", async () => {
    const streamed = await client.execute("t.stream", { n: 2 });
    const unary = await client.run("t.stream", { n: 2 });
    assert.equal(unary.status.code, grpc.status.OK);
    assert.deepEqual(unary.events, streamed.events);
    assert.deepEqual(outputOf(await client.run("t.echo", { x: 1 })).params, { x: 1 });
    assert.deepEqual(errorOf(await client.run("t.fail")), { code: "invalid_input", message: "top must be at least 1", field: "top", retryable: true });
    assert.equal(errorOf(await client.run("t.nope")).code, "unknown_node_type");
    assert.equal(errorOf(await client.run("t.echo", undefined, { paramsJson: "[]" })).code, "invalid_parameters");
    assert.equal(errorOf(await client.run("t.throw")).code, "handler_error");
  });

  test("Run's deadline aborts the handler's signal", async () => {
    const outcome = await client.run("t.wait-abort", { key: "run-deadline" }, { deadlineMs: 300 });
    assert.equal(outcome.status.code, grpc.status.DEADLINE_EXCEEDED);
    const reason = (await withTimeout(seen.get("run-deadline")!, 2000)) as NodeError;
    assert.equal(reason.code, "cancelled");
  });

  test("a throwing handler is handler_error and the server goes on", async () => {
    const thrown = errorOf(await client.execute("t.throw"));
    assert.deepEqual(thrown, { code: "handler_error", message: "kaput", field: "", retryable: false });
    assert.equal(errorOf(await client.execute("t.throw-string")).message, "plain text");
    assert.equal(errorOf(await client.execute("t.array")).code, "invalid_output");
    assert.equal(errorOf(await client.execute("t.bad-chunk")).code, "handler_error");
    assert.deepEqual(outputOf(await client.execute("t.stream", { n: 1 })), { n: 1 });
    assert.ok(logLines.some((line) => line.startsWith("t.throw (run run-1, node node-1): handler error: Error: kaput")));
  });

  test("calls run concurrently", async () => {
    const started = Date.now();
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => client.execute("t.sleep", { ms: 300 })));
    for (const outcome of outcomes) assert.deepEqual(outputOf(outcome), { slept_ms: 300 });
    assert.ok(Date.now() - started < 2000, `8 calls of 300 ms took ${Date.now() - started} ms`);
  });

  test("cancelling the call aborts the handler's signal", async () => {
    const { stream, outcome } = client.start("t.wait-abort", { key: "cancel" });
    await waitFor(() => seen.has("cancel"));
    stream.cancel();
    const reason = (await withTimeout(seen.get("cancel")!, 2000)) as NodeError;
    assert.ok(NodeError.is(reason));
    assert.equal(reason.code, "cancelled");
    assert.match(reason.message, /cancelled/);
    assert.equal((await outcome).status.code, grpc.status.CANCELLED);
    await waitFor(() => running.activeCalls === 0);
  });

  test("the call's deadline aborts the handler's signal", async () => {
    const started = Date.now();
    const outcome = await client.execute("t.wait-abort", { key: "deadline" }, { deadlineMs: 300 });
    assert.equal(outcome.status.code, grpc.status.DEADLINE_EXCEEDED);
    const reason = (await withTimeout(seen.get("deadline")!, 2000)) as NodeError;
    assert.equal(reason.code, "cancelled");
    assert.match(reason.message, /deadline/);
    assert.ok(Date.now() - started < 3000);
  });

  test("health is SERVING for the sidecar and NOT_FOUND for unknown services", async () => {
    assert.equal((await client.check("")).status, "SERVING");
    assert.equal((await client.check("polyhost.runtime.v1.NodeRuntime")).status, "SERVING");
    assert.equal((await rpcError(client.check("nope"))).code, grpc.status.NOT_FOUND);
  });
});

describe("on 127.0.0.1:0", () => {
  let running: RunningSidecar;
  let client: TestClient;

  before(async () => {
    running = await makeSidecar().start({ listen: "127.0.0.1:0" });
    client = new TestClient(running.address);
  });
  after(async () => {
    client.close();
    await running.stop();
  });

  test("the address names the port picked", () => {
    assert.ok(running.port !== null && running.port > 0);
    assert.equal(running.address, `127.0.0.1:${running.port}`);
  });

  test("Describe and Execute work over TCP", async () => {
    assert.equal((await client.describe()).node_types.length, 10);
    assert.deepEqual(outputOf(await client.execute("t.stream", { n: 2 })).n, 2);
  });

  test("another server cannot take the same port", async () => {
    await assert.rejects(makeSidecar().start({ listen: running.address }), (error: Error) => {
      assert.equal(error.name, "ListenError");
      assert.match(error.message, new RegExp(`cannot listen on ${running.address.replace(/\./g, "\\.")}`));
      assert.ok(!error.message.includes("\n"));
      return true;
    });
  });
});

describe("with a token", () => {
  let running: RunningSidecar;
  let client: TestClient;
  const token = "s3cret-token";

  before(async () => {
    running = await makeSidecar().start({ listen: "127.0.0.1:0", token });
    client = new TestClient(running.address);
  });
  after(async () => {
    client.close();
    await running.stop();
  });

  test("a missing or wrong token is UNAUTHENTICATED", async () => {
    for (const metadata of [bearer(undefined), bearer("wrong"), bearer(""), rawAuth(token)]) {
      const error = await rpcError(client.describe("1.0", metadata));
      assert.equal(error.code, grpc.status.UNAUTHENTICATED);
      assert.ok(!error.details.includes(token));
      const outcome = await client.execute("t.echo", {}, { metadata });
      assert.equal(outcome.status.code, grpc.status.UNAUTHENTICATED);
      assert.equal(outcome.events.length, 0);
      assert.equal((await client.run("t.echo", {}, { metadata })).status.code, grpc.status.UNAUTHENTICATED);
    }
  });

  test("the right token is accepted", async () => {
    assert.equal((await client.describe("1.1", bearer(token))).name, "unit");
    assert.deepEqual(outputOf(await client.run("t.stream", { n: 1 }, { metadata: bearer(token) })), { n: 1 });
    assert.deepEqual(outputOf(await client.execute("t.stream", { n: 1 }, { metadata: bearer(token) })), { n: 1 });
  });

  test("health needs no token", async () => {
    assert.equal((await client.check("")).status, "SERVING");
  });
});

describe("stopping", () => {
  test("lets running calls finish, refuses new ones and reports NOT_SERVING", async () => {
    const running = await makeSidecar().start({ listen: "127.0.0.1:0" });
    const client = new TestClient(running.address);
    const watch = client.health.Watch({ service: "" }) as grpc.ClientReadableStream<{ status: string }>;
    const statuses: string[] = [];
    watch.on("data", (response) => statuses.push(response.status));
    watch.on("error", () => undefined);
    await waitFor(() => statuses.length === 1);
    const slow = client.start("t.sleep", { ms: 400 });
    await waitFor(() => running.activeCalls === 1);
    const stopped = running.stop(3000);
    await waitFor(() => statuses.includes("NOT_SERVING"));
    const outcome = await slow.outcome;
    assert.deepEqual(outputOf(outcome), { slept_ms: 400 });
    await stopped;
    assert.deepEqual(statuses, ["SERVING", "NOT_SERVING"]);
    const late = await client.execute("t.echo", {}, { deadlineMs: 1000 });
    assert.notEqual(late.status.code, grpc.status.OK);
    client.close();
  });

  test("cancels calls still running after the grace period", async () => {
    const running = await makeSidecar().start({ listen: "127.0.0.1:0" });
    const client = new TestClient(running.address);
    const slow = client.start("t.ignore-abort", { key: "stop", ms: 60_000 });
    await waitFor(() => seen.has("stop"));
    const started = Date.now();
    await running.stop(200);
    const reason = (await withTimeout(seen.get("stop")!, 1000)) as NodeError;
    assert.equal(reason.code, "cancelled");
    assert.match(reason.message, /shutting down/);
    assert.ok(Date.now() - started < 3000);
    assert.notEqual((await slow.outcome).status.code, grpc.status.OK);
    client.close();
  });

  test("a unix socket file is removed on stop, a stale one replaced on start", async () => {
    const tmp = tempDir();
    const socket = path.join(tmp.dir, "s.sock");
    const first = await makeSidecar().start({ listen: `unix:${socket}` });
    await assert.rejects(makeSidecar().start({ listen: `unix:${socket}` }), /in use/);
    await first.stop();
    assert.throws(() => statSync(socket));
    tmp.remove();
  });
});

describe("registration", () => {
  test("rejects duplicates, bad schemas and late registration", async () => {
    const sidecar = new Sidecar("reg");
    sidecar.node({ type: "a.b" }, async () => ({}));
    assert.throws(() => sidecar.node({ type: "a.b" }, async () => ({})), /registered twice/);
    assert.throws(() => sidecar.node({ type: "" }, async () => ({})), /non-empty/);
    assert.throws(() => sidecar.node({ type: "a.c", inputSchema: "{nope" }, async () => ({})), /not valid JSON/);
    assert.throws(() => sidecar.node({ type: "a.d", inputSchema: "[1]" }, async () => ({})), /JSON object/);
    assert.deepEqual(sidecar.describe().node_types.map((t) => t.type), ["a.b"]);
    const running = await sidecar.start({ listen: "127.0.0.1:0" });
    assert.throws(() => sidecar.node({ type: "a.e" }, async () => ({})), /before start/);
    await running.stop();
  });
});

function rawAuth(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", token);
  return metadata;
}

async function waitFor(condition: () => boolean, ms = 5000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms).unref()),
  ]);
}
