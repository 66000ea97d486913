import { chmod, unlink } from "node:fs/promises";
import * as grpc from "@grpc/grpc-js";
import type { CallRun } from "./call";
import type { StartOptions } from "./config";
import { HealthService } from "./health";
import { bindTarget, DEFAULT_LISTEN, formatAddress, ListenError, parseListenAddress, prepareUnixSocket } from "./listen";
import { errorText, type Logger } from "./log";
import type { RegisteredNodeType } from "./node-type";
import { installPanicHooks } from "./panic";
import { HEALTH_SERVICE, RUNTIME_SERVICE, serviceDefinition } from "./proto";
import { runtimeImplementation } from "./service";

/** Default time a stop lets running calls finish. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5000;

/** Default largest request accepted (the host's default `max_message_bytes`). */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** A sidecar server that is listening. */
export interface RunningSidecar {
  /** The address it listens on, with the bound port (`127.0.0.1:43121` or `unix:/path.sock`). */
  readonly address: string;
  /** The TCP port bound, or null on a unix socket. */
  readonly port: number | null;
  /** True when it serves with TLS. */
  readonly tls: boolean;
  /** Execute calls that are not over yet. */
  readonly activeCalls: number;
  /** Settles once the server has stopped. */
  readonly stopped: Promise<void>;
  /**
   * Stops: health NOT_SERVING, no new calls, running calls get `graceMs` (default 5000) to
   * finish, then their signals are aborted and the server is closed. Safe to call twice.
   */
  stop(graceMs?: number): Promise<void>;
}

/** What {@link startServer} needs from a Sidecar. */
export interface ServerSetup {
  name: string;
  nodes: ReadonlyMap<string, RegisteredNodeType>;
  reportedProtocolVersion: string;
  log: Logger;
}

/** Starts serving NodeRuntime and Health. Rejects with a {@link ListenError} when it cannot listen. */
export async function startServer(setup: ServerSetup, options: StartOptions): Promise<RunningSidecar> {
  const address = parseListenAddress(options.listen ?? DEFAULT_LISTEN);
  const graceDefault = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  installPanicHooks();

  const health = new HealthService();
  const active = new Set<CallRun>();
  let stopping: Promise<void> | null = null;

  const server = new grpc.Server({
    "grpc.max_receive_message_length": options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": -1,
  });
  server.addService(
    serviceDefinition(RUNTIME_SERVICE),
    runtimeImplementation({
      name: setup.name,
      nodes: setup.nodes,
      reportedProtocolVersion: setup.reportedProtocolVersion,
      token: options.token ?? "",
      log: setup.log,
      isStopping: () => stopping !== null,
      track: (run) => {
        active.add(run);
        void run.done.then(() => active.delete(run));
      },
    }),
  );
  server.addService(serviceDefinition(HEALTH_SERVICE), health.implementation());

  const credentials =
    options.tls === undefined
      ? grpc.ServerCredentials.createInsecure()
      : grpc.ServerCredentials.createSsl(null, [{ cert_chain: toBuffer(options.tls.cert), private_key: toBuffer(options.tls.key) }], false);

  if (address.kind === "unix") await prepareUnixSocket(address.path);
  const boundPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(bindTarget(address), credentials, (error, port) => {
      if (error) reject(new ListenError(`cannot listen on ${formatAddress(address)}: ${bindErrorText(error)}`));
      else resolve(port);
    });
  });
  if (address.kind === "unix") {
    try {
      await chmod(address.path, 0o600);
    } catch (error) {
      server.forceShutdown();
      throw new ListenError(`cannot restrict ${address.path} to its owner: ${errorText(error)}`);
    }
  }

  health.setStatus("", "SERVING");
  health.setStatus(RUNTIME_SERVICE, "SERVING");

  let markStopped!: () => void;
  const stopped = new Promise<void>((resolve) => (markStopped = resolve));

  const stop = (graceMs: number = graceDefault): Promise<void> => {
    if (stopping !== null) return stopping;
    stopping = (async () => {
      health.setAll("NOT_SERVING");
      health.endWatches();
      const closed = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      const allDone = (): Promise<unknown> => Promise.all([...active].map((run) => run.done));
      if (!(await within(allDone(), graceMs))) {
        setup.log(`${active.size} call(s) still running after ${graceMs} ms; cancelling them`);
        for (const run of active) run.cancel("the sidecar is shutting down");
        await within(allDone(), 250);
        server.forceShutdown();
      }
      if (!(await within(closed, 1000))) server.forceShutdown();
      if (address.kind === "unix") await unlink(address.path).catch(() => undefined);
      markStopped();
    })();
    return stopping;
  };

  return {
    address: formatAddress(address, address.kind === "tcp" ? boundPort : undefined),
    port: address.kind === "tcp" ? boundPort : null,
    tls: options.tls !== undefined,
    get activeCalls() {
      return active.size;
    },
    stopped,
    stop,
  };
}

/** Resolves true if `promise` settles within `ms`, else false. */
function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(true);
      },
    );
  });
}

function toBuffer(value: Buffer | string): Buffer {
  return typeof value === "string" ? Buffer.from(value, "utf8") : value;
}

/** The useful part of a bind error ("listen EADDRINUSE: address already in use ..."), on one line. */
function bindErrorText(error: Error): string {
  const text = errorText(error).replace(/\s+/g, " ").trim();
  const inner = /errors: \[(.*)\]$/.exec(text)?.[1];
  return (inner !== undefined && inner !== "" ? inner : text).replace(/(^|,)Error: /g, "$1");
}
