import { describeJsonKind, isPlainObject } from "./json";
import { errorDetail, errorText, type Logger } from "./log";
import type { ErrorEvent, ExecuteEvent, ExecuteRequest, LogLevelName } from "./messages";
import { NodeError } from "./node-error";
import type { RegisteredNodeType } from "./node-type";
import { callStorage, type PanicTarget } from "./panic";

/** Levels of {@link NodeCall.log}. */
export type LogLevel = "debug" | "info" | "warning" | "error";

/** Where an attempt belongs (from the request's NodeContext). */
export interface CallContext {
  /** The node type being run. */
  readonly nodeType: string;
  readonly runId: string;
  readonly workflowId: string;
  readonly nodeId: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** The same across attempts and across a crash of the host: use it to make side effects idempotent. */
  readonly idempotencyKey: string;
  /** When the host gives up on this attempt, or null for none. */
  readonly deadline: Date | null;
}

/** What a handler gets besides its parameters. */
export interface NodeCall {
  /** Where this attempt belongs. */
  readonly context: CallContext;
  /**
   * Aborted when the host cancels the call or its deadline passes (and when the sidecar stops
   * and the call has not finished within the grace period). Its `reason` is a
   * `NodeError("cancelled", ...)`, so `signal.throwIfAborted()` ends the call properly.
   */
  readonly signal: AbortSignal;
  /**
   * Sends a log line to the host: at once on an Execute stream, with the result when the host
   * used a unary Run call (node types declared `unary`).
   */
  log(level: LogLevel, message: string): void;
  /** Sends a piece of streamed output (any JSON value) to the host, like {@link log}. */
  chunk(value: unknown): void;
  /** Reports progress, `fraction` from 0 to 1 (clamped), with an optional message, like {@link log}. */
  progress(fraction: number, message?: string): void;
  /** Waits `ms` milliseconds; rejects with `signal.reason` if the call is cancelled first. */
  sleep(ms: number): Promise<void>;
}

const LEVELS: Record<LogLevel, LogLevelName> = {
  debug: "DEBUG",
  info: "INFO",
  warning: "WARNING",
  error: "ERROR",
};

/** Where a call's events go: an Execute stream, or the reply of a Run call. */
export interface EventSink {
  readonly request: ExecuteRequest;
  /** The gRPC deadline in ms since the epoch, or Infinity. */
  readonly deadlineMs: number;
  /** Sends (or keeps) one event. */
  write(event: ExecuteEvent): void;
  /** Called once, after the final event. */
  end(): void;
  /** Registers what to do when the host cancels the RPC or its deadline passes. */
  onCancelled(listener: () => void): void;
}

/** How a call stands: handler running, final event sent, or the RPC gone (cancelled, deadline). */
type CallState = "running" | "finished" | "gone";

/** The Error event for anything a handler threw. */
export function errorEventFor(error: unknown): ErrorEvent {
  if (NodeError.is(error)) {
    return { code: error.code, message: error.message, field: error.field, retryable: error.retryable };
  }
  return { code: "handler_error", message: errorText(error), field: "", retryable: false };
}

/**
 * One Execute or Run call: runs the handler and turns what it does into ExecuteEvents, in order, ending
 * with exactly one Result or Error.
 */
export class CallRun implements PanicTarget {
  /** The object the handler gets. */
  readonly call: NodeCall;
  /** Settles once the call is over for the host: final event sent, or the RPC cancelled. */
  readonly done: Promise<void>;

  private state: CallState = "running";
  private readonly controller = new AbortController();
  private readonly deadlineMs: number;
  private resolveDone!: () => void;

  constructor(
    private readonly sink: EventSink,
    private readonly node: RegisteredNodeType,
    private readonly params: Record<string, unknown>,
    private readonly log: Logger,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.deadlineMs = sink.deadlineMs;
    this.call = this.makeCall(sink.request);
    sink.onCancelled(() => this.onCancelled());
  }

  /** Starts the handler (inside {@link callStorage}, so its stray exceptions find this call). */
  start(): void {
    callStorage.run(this, () => void this.invoke());
  }

  /** Aborts the call's signal (the sidecar is stopping); the handler may still answer. */
  cancel(message: string): void {
    this.abort(message);
  }

  panic(error: unknown): boolean {
    if (this.state === "finished") return false;
    this.log(`${this.describe()}: handler panic: ${errorDetail(error)}`);
    this.finish({
      error: { code: "handler_panic", message: `the handler crashed: ${errorText(error)}`, field: "", retryable: false },
    });
    this.abort("the handler crashed");
    return true;
  }

  private async invoke(): Promise<void> {
    let output: unknown;
    try {
      output = await this.node.handler(this.params, this.call);
    } catch (error) {
      this.fail(error);
      return;
    }
    this.succeed(output);
  }

  private succeed(output: unknown): void {
    if (this.state !== "running") return;
    if (!isPlainObject(output)) {
      this.finishInvalidOutput(`the handler returned ${describeJsonKind(output)}; a node's output must be a JSON object`);
      return;
    }
    let text: string | undefined;
    try {
      text = JSON.stringify(output);
    } catch (error) {
      this.finishInvalidOutput(`the output cannot be written as JSON: ${errorText(error)}`);
      return;
    }
    if (typeof text !== "string" || !text.startsWith("{")) {
      this.finishInvalidOutput("the output does not serialize to a JSON object");
      return;
    }
    this.finish({ result: { output_json: text } });
  }

  private fail(error: unknown): void {
    if (this.state !== "running") return;
    const event = errorEventFor(error);
    if (event.code === "handler_error") this.log(`${this.describe()}: handler error: ${errorDetail(error)}`);
    this.finish({ error: event });
  }

  private finishInvalidOutput(message: string): void {
    this.log(`${this.describe()}: invalid output: ${message}`);
    this.finish({ error: { code: "invalid_output", message, field: "", retryable: false } });
  }

  /** Sends the final event and ends the call. */
  private finish(event: ExecuteEvent): void {
    if (this.state !== "running") return;
    this.state = "finished";
    this.write(event);
    try {
      this.sink.end();
    } catch {
      // the call is already gone
    }
    this.resolveDone();
  }

  private send(event: ExecuteEvent): void {
    if (this.state === "running") this.write(event);
  }

  private write(event: ExecuteEvent): void {
    try {
      this.sink.write(event);
    } catch (error) {
      this.log(`${this.describe()}: cannot send an event: ${errorText(error)}`);
    }
  }

  private onCancelled(): void {
    if (this.state !== "running") return;
    this.state = "gone";
    const deadlinePassed = Number.isFinite(this.deadlineMs) && Date.now() >= this.deadlineMs - 20;
    this.abort(deadlinePassed ? "the call's deadline passed" : "the host cancelled the call");
    this.resolveDone();
  }

  private abort(message: string): void {
    if (!this.controller.signal.aborted) this.controller.abort(new NodeError("cancelled", message));
  }

  private describe(): string {
    const ctx = this.call.context;
    const where = [ctx.runId && `run ${ctx.runId}`, ctx.nodeId && `node ${ctx.nodeId}`].filter(Boolean).join(", ");
    return where === "" ? ctx.nodeType : `${ctx.nodeType} (${where})`;
  }

  private makeCall(request: ExecuteRequest): NodeCall {
    const ctx = request.context;
    const deadlineUnix = ctx?.deadline_unix ?? 0;
    const deadline =
      deadlineUnix > 0 ? new Date(deadlineUnix * 1000) : Number.isFinite(this.deadlineMs) ? new Date(this.deadlineMs) : null;
    const context: CallContext = Object.freeze({
      nodeType: request.node_type,
      runId: ctx?.run_id ?? "",
      workflowId: ctx?.workflow_id ?? "",
      nodeId: ctx?.node_id ?? "",
      attempt: ctx?.attempt ?? 0,
      idempotencyKey: ctx?.idempotency_key ?? "",
      deadline,
    });
    const signal = this.controller.signal;
    return Object.freeze({
      context,
      signal,
      log: (level: LogLevel, message: string): void => {
        this.send({ log: { level: LEVELS[level] ?? "INFO", message: String(message) } });
      },
      chunk: (value: unknown): void => {
        const text = JSON.stringify(value);
        if (typeof text !== "string") throw new TypeError(`a chunk must be a JSON value, got ${describeJsonKind(value)}`);
        this.send({ chunk: { data_json: text } });
      },
      progress: (fraction: number, message?: string): void => {
        if (typeof fraction !== "number" || Number.isNaN(fraction)) {
          throw new TypeError(`progress fraction must be a number from 0 to 1, got ${String(fraction)}`);
        }
        this.send({ progress: { fraction: Math.min(1, Math.max(0, fraction)), message: message ?? "" } });
      },
      sleep: (ms: number): Promise<void> => sleepUnlessAborted(ms, signal),
    });
  }
}

/** The gRPC deadline of a call in ms since the epoch, or Infinity. */
export function deadlineOf(call: { getDeadline(): Date | number }): number {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return typeof ms === "number" && ms > 0 ? ms : Infinity;
}

/** Waits `ms` milliseconds, or rejects with the signal's reason as soon as it is aborted. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
