/** Helpers for the tests: a real gRPC client for NodeRuntime and Health, and subprocess handling. */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { healthClientConstructor, runtimeClientConstructor } from "../src/index";
import type { DescribeResponse, ExecuteEvent, ExecuteRequest, HealthCheckResponse, NodeContext, RunReply } from "../src/messages";

/** The package's folder (…/sandboxes/node), from dist/test. */
export const PACKAGE_DIR = path.resolve(__dirname, "..", "..");

/** A fresh temporary folder, removed by the returned function. */
export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), "phsc-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Metadata with `authorization: Bearer <token>` (empty metadata for no token). */
export function bearer(token?: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

/** How an RPC ended: events received (for Execute), then the gRPC status. */
export interface ExecuteOutcome {
  events: ExecuteEvent[];
  status: grpc.StatusObject;
}

/** A real client of one sidecar. */
export class TestClient {
  readonly runtime: grpc.Client & Record<string, any>;
  readonly health: grpc.Client & Record<string, any>;

  constructor(address: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), channelOptions: grpc.ChannelOptions = {}) {
    const options = { "grpc.max_receive_message_length": 64 * 1024 * 1024, ...channelOptions };
    const Runtime = runtimeClientConstructor();
    const Health = healthClientConstructor();
    this.runtime = new Runtime(address, credentials, options) as grpc.Client & Record<string, any>;
    this.health = new Health(address, credentials, options) as grpc.Client & Record<string, any>;
  }

  describe(protocolVersion = "1.1", metadata = new grpc.Metadata()): Promise<DescribeResponse> {
    return new Promise((resolve, reject) => {
      this.runtime.Describe({ protocol_version: protocolVersion }, metadata, { deadline: Date.now() + 10_000 }, (error: grpc.ServiceError | null, response: DescribeResponse) =>
        error ? reject(error) : resolve(response),
      );
    });
  }

  /** Starts an Execute call; returns the stream and a promise of its outcome. */
  start(
    nodeType: string,
    params: unknown = {},
    options: CallOptions = {},
  ): { stream: grpc.ClientReadableStream<ExecuteEvent>; outcome: Promise<ExecuteOutcome> } {
    const request = executeRequest(nodeType, params, options);
    const callOptions: grpc.CallOptions = { deadline: Date.now() + (options.deadlineMs ?? 10_000) };
    const stream = this.runtime.Execute(request, options.metadata ?? new grpc.Metadata(), callOptions) as grpc.ClientReadableStream<ExecuteEvent>;
    const events: ExecuteEvent[] = [];
    const outcome = new Promise<ExecuteOutcome>((resolve) => {
      let status: grpc.StatusObject | undefined;
      let ended = false;
      const finish = (): void => {
        if (status !== undefined && ended) resolve({ events, status });
      };
      stream.on("data", (event: ExecuteEvent) => events.push(event));
      stream.on("status", (s: grpc.StatusObject) => {
        status = s;
        finish();
      });
      stream.on("error", () => {
        ended = true;
        finish();
      });
      stream.on("end", () => {
        ended = true;
        finish();
      });
    });
    return { stream, outcome };
  }

  /** Runs a unary Run call; resolves with its outcome (events empty when the RPC failed). */
  run(nodeType: string, params: unknown = {}, options: CallOptions = {}): Promise<ExecuteOutcome> {
    const request = executeRequest(nodeType, params, options);
    const callOptions: grpc.CallOptions = { deadline: Date.now() + (options.deadlineMs ?? 10_000) };
    return new Promise((resolve) => {
      this.runtime.Run(request, options.metadata ?? new grpc.Metadata(), callOptions, (error: grpc.ServiceError | null, reply: RunReply) => {
        if (error) resolve({ events: [], status: { code: error.code, details: error.details, metadata: error.metadata } });
        else resolve({ events: reply.events, status: { code: grpc.status.OK, details: "", metadata: new grpc.Metadata() } });
      });
    });
  }

  /** Runs an Execute call to its end. */
  execute(nodeType: string, params: unknown = {}, options: CallOptions = {}): Promise<ExecuteOutcome> {
    return this.start(nodeType, params, options).outcome;
  }

  check(service = ""): Promise<HealthCheckResponse> {
    return new Promise((resolve, reject) => {
      this.health.Check({ service }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, (error: grpc.ServiceError | null, response: HealthCheckResponse) =>
        error ? reject(error) : resolve(response),
      );
    });
  }

  close(): void {
    this.runtime.close();
    this.health.close();
  }
}

/** Options of an Execute or Run call in the tests. */
export interface CallOptions {
  metadata?: grpc.Metadata;
  deadlineMs?: number;
  protocolVersion?: string;
  paramsJson?: string;
  context?: Partial<NodeContext>;
}

function executeRequest(nodeType: string, params: unknown, options: CallOptions): ExecuteRequest {
  return {
    protocol_version: options.protocolVersion ?? "1.1",
    node_type: nodeType,
    params_json: options.paramsJson ?? JSON.stringify(params),
    context: {
      run_id: "run-1",
      workflow_id: "wf-1",
      node_id: "node-1",
      attempt: 1,
      idempotency_key: "key-1",
      deadline_unix: 0,
      ...options.context,
    },
  };
}

/** The last event of an outcome, which must be its only result or error. */
export function finalEvent(outcome: ExecuteOutcome): ExecuteEvent {
  const finals = outcome.events.filter((e) => e.event === "result" || e.event === "error");
  if (finals.length !== 1) throw new Error(`expected exactly one result or error, got ${JSON.stringify(outcome.events)}`);
  if (outcome.events[outcome.events.length - 1] !== finals[0]) throw new Error("the result or error is not the last event");
  return finals[0]!;
}

/** The parsed output of a successful outcome. */
export function outputOf(outcome: ExecuteOutcome): any {
  const last = finalEvent(outcome);
  if (last.event !== "result") throw new Error(`expected a result, got ${JSON.stringify(last)}`);
  return JSON.parse(last.result!.output_json);
}

/** The error event of a failed outcome. */
export function errorOf(outcome: ExecuteOutcome) {
  const last = finalEvent(outcome);
  if (last.event !== "error") throw new Error(`expected an error, got ${JSON.stringify(last)}`);
  return last.error!;
}

/** Rejects with `error` (a gRPC ServiceError) or throws when the promise resolves. */
export async function rpcError(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error("expected the RPC to fail");
}

/** A sidecar program run as a child process. */
export class SidecarProcess {
  readonly child: ChildProcess;
  stdout = "";
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(script: string, env: Record<string, string>, args: string[] = [], stdin: "pipe" | "ignore" = "ignore") {
    this.child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, ...env },
      stdio: [stdin, "pipe", "pipe"],
    });
    this.child.stdout!.setEncoding("utf8").on("data", (text: string) => (this.stdout += text));
    this.child.stderr!.setEncoding("utf8").on("data", (text: string) => (this.stderr += text));
    this.exited = new Promise((resolve) => this.child.once("exit", (code, signal) => resolve({ code, signal })));
  }

  /** Waits for the READY line and returns the address it names. */
  async ready(timeoutMs = 10_000): Promise<string> {
    const started = Date.now();
    for (;;) {
      const match = /^POLYHOST_SIDECAR_READY (\S+)\n/m.exec(this.stdout);
      if (match) return match[1]!;
      if (this.child.exitCode !== null) throw new Error(`sidecar exited with ${this.child.exitCode}: ${this.stderr}`);
      if (Date.now() - started > timeoutMs) throw new Error(`no READY line after ${timeoutMs} ms: ${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Resolves with the exit, or rejects after `ms`. */
  async exit(ms = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the sidecar did not exit within ${ms} ms; stderr: ${this.stderr}`)), ms);
    });
    try {
      const result = await Promise.race([this.exited, timeout]);
      return { ...result, ms: Date.now() - started };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills it if it still runs. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

/** Path of a compiled example, e.g. example("testkit"). */
export function example(name: string): string {
  return path.join(PACKAGE_DIR, "dist", "examples", `${name}.js`);
}
