import { readFileSync } from "node:fs";
import { DEFAULT_LISTEN, ListenError } from "./listen";

/** PEM-encoded certificate chain and private key for serving with TLS. */
export interface TlsFiles {
  cert: Buffer | string;
  key: Buffer | string;
}

/** How to run a server ({@link Sidecar.start}); nothing is read from the environment. */
export interface StartOptions {
  /** `unix:/absolute/path.sock` or `HOST:PORT` (port 0 picks a free one); default 127.0.0.1:50051. */
  listen?: string;
  /** When non-empty, every RPC except Health must carry `authorization: Bearer <token>`. */
  token?: string;
  /** Serve with TLS. */
  tls?: TlsFiles;
  /** How long a stop lets running calls finish before cancelling them (default 5000 ms). */
  shutdownGraceMs?: number;
  /** Largest request the server accepts, in bytes (default 64 MiB, as the host's default). */
  maxMessageBytes?: number;
}

/** How to run a sidecar process ({@link Sidecar.serve}). */
export interface ServeOptions {
  /** Listen address used when neither POLYHOST_LISTEN nor `--listen` is given. */
  listen?: string;
  /** Command-line arguments to look for `--listen ADDR` in (default: `process.argv.slice(2)`). */
  argv?: readonly string[];
  /** Environment to read (default: `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** How long SIGTERM/SIGINT lets running calls finish before cancelling them (default 5000 ms). */
  shutdownGraceMs?: number;
  /** Largest request the server accepts, in bytes (default 64 MiB, as the host's default). */
  maxMessageBytes?: number;
  /**
   * Runs once the configuration is read and the parent watch is on, before listening (load what
   * the node types need here: the host sees the sidecar only once it listens and is SERVING).
   */
  beforeListen?: () => void | Promise<void>;
}

/** Environment variables a sidecar reads. */
export const ENV = {
  listen: "POLYHOST_LISTEN",
  token: "POLYHOST_SIDECAR_TOKEN",
  tlsCert: "POLYHOST_TLS_CERT",
  tlsKey: "POLYHOST_TLS_KEY",
  parentWatch: "POLYHOST_PARENT_WATCH",
} as const;

/** The outcome of {@link resolveServeConfig}. */
export interface ServeConfig {
  start: StartOptions & { listen: string };
  /** Where the listen address came from, for the start-up log line. */
  listenSource: string;
  /** True when POLYHOST_PARENT_WATCH=stdin. */
  watchStdin: boolean;
  /** A warning to log (an unknown POLYHOST_PARENT_WATCH value), if any. */
  warning?: string;
}

/**
 * Reads the listen address (POLYHOST_LISTEN, else `--listen`, else the `listen` option, else
 * 127.0.0.1:50051), the token, TLS files and the parent watch from the environment and arguments.
 * Throws a {@link ListenError} with a one-line message when something is wrong.
 */
export function resolveServeConfig(options: ServeOptions): ServeConfig {
  const env = options.env ?? process.env;
  const argv = options.argv ?? process.argv.slice(2);
  let listen: string;
  let listenSource: string;
  const fromFlag = listenFlag(argv);
  if (nonEmpty(env[ENV.listen])) {
    listen = env[ENV.listen]!.trim();
    listenSource = ENV.listen;
  } else if (fromFlag !== undefined) {
    listen = fromFlag;
    listenSource = "--listen";
  } else if (nonEmpty(options.listen)) {
    listen = options.listen!.trim();
    listenSource = "the listen option";
  } else {
    listen = DEFAULT_LISTEN;
    listenSource = "the default";
  }

  const start: StartOptions & { listen: string } = { listen, token: env[ENV.token] ?? "" };
  if (options.shutdownGraceMs !== undefined) start.shutdownGraceMs = options.shutdownGraceMs;
  if (options.maxMessageBytes !== undefined) start.maxMessageBytes = options.maxMessageBytes;
  const certPath = env[ENV.tlsCert] ?? "";
  const keyPath = env[ENV.tlsKey] ?? "";
  if (certPath !== "" || keyPath !== "") {
    if (certPath === "" || keyPath === "") {
      throw new ListenError(`TLS needs both ${ENV.tlsCert} and ${ENV.tlsKey}; only ${certPath !== "" ? ENV.tlsCert : ENV.tlsKey} is set`);
    }
    start.tls = { cert: readPem(ENV.tlsCert, certPath), key: readPem(ENV.tlsKey, keyPath) };
  }

  const watch = env[ENV.parentWatch] ?? "";
  const config: ServeConfig = { start, listenSource, watchStdin: watch === "stdin" };
  if (watch !== "" && watch !== "stdin") {
    config.warning = `ignoring ${ENV.parentWatch}=${JSON.stringify(watch)} (the only value is "stdin")`;
  }
  return config;
}

/** The value of `--listen ADDR` or `--listen=ADDR`, if given. */
export function listenFlag(argv: readonly string[]): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--listen") {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) throw new ListenError("--listen needs an address, e.g. --listen 127.0.0.1:50051");
      value = next;
      i++;
    } else if (arg.startsWith("--listen=")) {
      value = arg.slice("--listen=".length);
    }
  }
  return value;
}

function readPem(variable: string, filePath: string): Buffer {
  try {
    return readFileSync(filePath);
  } catch (error) {
    throw new ListenError(`cannot read ${variable} (${filePath}): ${(error as Error).message}`);
  }
}

function nonEmpty(value: string | undefined): boolean {
  return value !== undefined && value.trim() !== "";
}
