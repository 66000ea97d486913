import { unlinkSync } from "node:fs";
import { format } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { ENV, resolveServeConfig, type ServeOptions } from "./config";
import { parseListenAddress } from "./listen";
import { errorText, type Logger } from "./log";
import { watchStdinForParent } from "./parent-watch";
import { DEFAULT_SHUTDOWN_GRACE_MS, type RunningSidecar, type ServerSetup, startServer } from "./server";

/** The line printed on stdout once the sidecar listens and is SERVING. */
export const READY_PREFIX = "POLYHOST_SIDECAR_READY";

/**
 * Runs a sidecar as a process: reads its configuration from the environment and arguments,
 * listens, prints the READY line, stops gracefully on SIGTERM/SIGINT (exit 0) and, with
 * POLYHOST_PARENT_WATCH=stdin, exits when stdin closes. Exits with status 1 (after one line on
 * stderr) when it cannot start.
 */
export async function serveProcess(setup: ServerSetup, options: ServeOptions): Promise<RunningSidecar> {
  const log = setup.log;
  routeGrpcLogs(log);
  let config;
  try {
    config = resolveServeConfig(options);
  } catch (error) {
    return fatal(log, error);
  }
  if (config.warning !== undefined) log(config.warning);

  let running: RunningSidecar | undefined;
  if (config.watchStdin) {
    const address = safeParse(config.start.listen);
    watchStdinForParent(() => {
      log("stdin closed (the host is gone); exiting");
      if (running !== undefined && address?.kind === "unix") {
        try {
          unlinkSync(address.path);
        } catch {
          // already gone
        }
      }
      process.exit(0);
    });
  }

  const graceMs = config.start.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  handleSignals(() => running, log, graceMs);

  try {
    if (options.beforeListen !== undefined) await options.beforeListen();
  } catch (error) {
    return fatal(log, new Error(`cannot start: ${errorText(error)}`));
  }

  try {
    running = await startServer(setup, config.start);
  } catch (error) {
    return fatal(log, error);
  }

  const extras = [
    running.tls ? "TLS" : "",
    config.start.token ? `token required (${ENV.token})` : "",
    config.watchStdin ? "exits when stdin closes" : "",
  ].filter(Boolean);
  log(
    `serving ${setup.nodes.size} node type(s) on ${running.address} (from ${config.listenSource})` +
      (extras.length > 0 ? `; ${extras.join(", ")}` : ""),
  );
  process.stdout.write(`${READY_PREFIX} ${running.address}\n`);
  return running;
}

/**
 * Sends gRPC's own log lines through the sidecar's logger, minus the bind failure that the
 * sidecar reports itself (so a failed start prints exactly one line).
 */
function routeGrpcLogs(log: Logger): void {
  const write = (message?: unknown, ...rest: unknown[]): void => {
    const text = format(message, ...rest);
    if (/^No address added out of total/.test(text)) return;
    log(`grpc: ${text}`);
  };
  grpc.setLogger({ error: write, info: write, debug: write });
}

/** SIGTERM/SIGINT: a graceful stop, then exit 0; before listening, or a second signal: exit 0 at once. */
function handleSignals(current: () => RunningSidecar | undefined, log: Logger, graceMs: number): void {
  let received = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    received++;
    const running = current();
    if (received > 1 || running === undefined) {
      log(received > 1 ? `${signal} again; exiting now` : `${signal} before listening; exiting`);
      process.exit(0);
    }
    log(`${signal}: stopping (running calls get up to ${graceMs} ms)`);
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log(`error while stopping: ${errorText(error)}`);
        process.exit(0);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

function fatal(log: Logger, error: unknown): never {
  log(errorText(error).split("\n")[0]!);
  process.exit(1);
}

function safeParse(listen: string): ReturnType<typeof parseListenAddress> | undefined {
  try {
    return parseListenAddress(listen);
  } catch {
    return undefined;
  }
}
