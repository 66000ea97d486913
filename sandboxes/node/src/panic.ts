import { AsyncLocalStorage } from "node:async_hooks";
import { errorDetail, type Logger, stderrLogger } from "./log";

/** Something that can take the blame for an exception that escaped a handler. */
export interface PanicTarget {
  /**
   * Reports an exception that escaped the handler's promise (thrown from a timer, an event
   * listener, a promise nobody awaited, ...). Returns false when the call had already ended.
   */
  panic(error: unknown): boolean;
}

/**
 * The call a piece of code runs for. Every handler runs inside `callStorage.run(call, ...)`, and
 * Node carries that through timers, promises and callbacks, so an uncaught exception can be traced
 * back to its call.
 */
export const callStorage = new AsyncLocalStorage<PanicTarget>();

let installed = false;
const fallbackLog: Logger = stderrLogger("");

/**
 * Installs process-wide handlers for `uncaughtException` and `unhandledRejection` (once), so a
 * handler's stray exception fails its call with `handler_panic` instead of ending the process.
 * Exceptions that belong to no running call are logged to stderr and the sidecar goes on.
 */
export function installPanicHooks(): void {
  if (installed) return;
  installed = true;
  const handle = (kind: string) => (error: unknown) => {
    const target = callStorage.getStore();
    if (target !== undefined && target.panic(error)) return;
    const where = target === undefined ? "outside any call" : "after its call had ended";
    fallbackLog(`${kind} ${where}: ${errorDetail(error)}`);
  };
  process.on("uncaughtException", handle("uncaught exception"));
  process.on("unhandledRejection", handle("unhandled promise rejection"));
}
