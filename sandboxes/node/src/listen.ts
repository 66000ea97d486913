import { lstat, unlink } from "node:fs/promises";
import * as net from "node:net";
import * as path from "node:path";

/** The address a sidecar listens on when nothing else is given. */
export const DEFAULT_LISTEN = "127.0.0.1:50051";

/** A parsed listen address. */
export type ListenAddress =
  | { readonly kind: "unix"; readonly path: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number };

/** A listen address or its setup is wrong; the message is one line, fit for stderr. */
export class ListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ListenError";
  }
}

/**
 * Parses `unix:/absolute/path.sock` (also `unix:///absolute/path.sock`) or `HOST:PORT`
 * (`[::1]:PORT` for IPv6). The host is required: there is no implicit "all interfaces".
 */
export function parseListenAddress(text: string): ListenAddress {
  const address = text.trim();
  if (address.startsWith("unix:")) {
    let socketPath = address.slice("unix:".length);
    if (socketPath.startsWith("//")) socketPath = socketPath.slice(2);
    if (!path.isAbsolute(socketPath)) {
      throw new ListenError(`listen address ${JSON.stringify(text)}: a unix socket path must be absolute (unix:/path/to.sock)`);
    }
    return { kind: "unix", path: socketPath };
  }
  const colon = address.lastIndexOf(":");
  if (colon < 0) {
    throw new ListenError(`listen address ${JSON.stringify(text)}: expected HOST:PORT or unix:/absolute/path.sock`);
  }
  let host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  if (host === "") {
    throw new ListenError(
      `listen address ${JSON.stringify(text)}: give a host, e.g. 127.0.0.1:${portText || "50051"} (0.0.0.0:PORT listens on all interfaces)`,
    );
  }
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
    throw new ListenError(`listen address ${JSON.stringify(text)}: the port must be a number from 0 to 65535`);
  }
  return { kind: "tcp", host, port: Number(portText) };
}

/** The address in the form gRPC binds to. */
export function bindTarget(address: ListenAddress): string {
  if (address.kind === "unix") return `unix:${address.path}`;
  return `${formatHost(address.host)}:${address.port}`;
}

/** The address as printed in the READY line, with the port actually bound. */
export function formatAddress(address: ListenAddress, boundPort?: number): string {
  if (address.kind === "unix") return `unix:${address.path}`;
  return `${formatHost(address.host)}:${boundPort ?? address.port}`;
}

function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * Makes room for a unix socket: a stale socket file (nobody accepts on it) is removed; a live
 * one, or a path that is not a socket, is an error.
 */
export async function prepareUnixSocket(socketPath: string): Promise<void> {
  let stats;
  try {
    stats = await lstat(socketPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new ListenError(`cannot inspect ${socketPath}: ${(error as Error).message}`);
  }
  if (!stats.isSocket()) {
    throw new ListenError(`${socketPath} exists and is not a socket; not removing it`);
  }
  if (await isAccepting(socketPath)) {
    throw new ListenError(`${socketPath} is in use by another process`);
  }
  try {
    await unlink(socketPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new ListenError(`cannot remove the stale socket ${socketPath}: ${(error as Error).message}`);
    }
  }
}

/** True when something accepts connections on the unix socket. */
function isAccepting(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ path: socketPath });
    const done = (accepting: boolean): void => {
      socket.destroy();
      resolve(accepting);
    };
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}
