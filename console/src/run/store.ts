// The live state of one run, folded from its events. Events are queued and applied once per
// animation frame, and each node's state is a new object only when that node changed, so a
// component that reads one node re-renders only when its node does: a 2,000-node run costs no
// full re-render per event. A streaming node keeps its reply as a string and only its latest
// raw chunks, so a reply of thousands of chunks costs no growing copy per chunk.
import type { RunError, RunEvent, RunStatus, Waiting } from "../api/types";
import { splitPath } from "../graph/model";
import { foldChunk, type Reply } from "./reply";

/** Raw chunks kept per node; older ones are dropped (the reply keeps their text). */
export const CHUNKS_KEPT = 500;

export type NodeStatus =
  | "pending"
  | "running"
  | "retrying"
  | "completed"
  | "failed"
  | "skipped"
  | "cancelled"
  | "paused";

export interface Attempt {
  attempt: number;
  start: number;
  end: number | null;
  outcome: NodeStatus;
  error?: RunError;
}

export interface LogLine {
  seq: number;
  ts: number;
  level: string;
  message: string;
  stream?: string;
}

export interface NodeState {
  path: string;
  status: NodeStatus;
  type: string | null;
  attempts: Attempt[];
  logs: LogLine[];
  /** The latest raw chunks (at most CHUNKS_KEPT) and how many came in all. */
  chunks: unknown[];
  chunkCount: number;
  /** The reply of the current attempt, when the node streams one. */
  reply: Reply | null;
  error: RunError | null;
  handled: string | null;
  pause: Waiting | null;
  durationMs: number | null;
  ports: string[];
  firstSeq: number;
}

export const PENDING: NodeState = Object.freeze({
  path: "",
  status: "pending",
  type: null,
  attempts: [],
  logs: [],
  chunks: [],
  chunkCount: 0,
  reply: null,
  error: null,
  handled: null,
  pause: null,
  durationMs: null,
  ports: [],
  firstSeq: 0,
});

type Listener = () => void;

const RUN_ENDS: Record<string, RunStatus> = {
  "run.completed": "completed",
  "run.failed": "failed",
  "run.cancelled": "cancelled",
  "run.paused": "paused",
};

export class RunStore {
  readonly events: RunEvent[] = [];
  readonly nodes = new Map<string, NodeState>();
  runStatus: RunStatus = "pending";
  startedAt: number | null = null;
  endedAt: number | null = null;
  version = 0;
  /** The node path a person selected (UI state kept here so only two nodes re-render). */
  selected: string | null = null;
  /** The last iteration seen of each group (by template key) and the ones a person chose. */
  private readonly latest = new Map<string, number>();
  private readonly chosen = new Map<string, number>();
  private readonly queue: RunEvent[] = [];
  private readonly listeners = new Set<Listener>();
  private scheduled = false;
  private readonly schedule: (flush: () => void) => void;

  constructor(schedule?: (flush: () => void) => void) {
    this.schedule = schedule ?? frameScheduler;
  }

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getVersion = (): number => this.version;

  push(events: RunEvent[]): void {
    this.queue.push(...events);
    if (this.scheduled) return;
    this.scheduled = true;
    this.schedule(() => {
      this.flush();
    });
  }

  /** Apply everything queued now and tell the listeners once. */
  flush(): void {
    this.scheduled = false;
    if (!this.queue.length) return;
    for (const event of this.queue.splice(0)) this.apply(event);
    this.version++;
    for (const listener of this.listeners) listener();
  }

  node(path: string): NodeState {
    return this.nodes.get(path) ?? PENDING;
  }

  iterationOf = (group: string): number | undefined =>
    this.chosen.get(group) ?? this.latest.get(group);

  iterationCount(group: string): number {
    const last = this.latest.get(group);
    return last === undefined ? 0 : last + 1;
  }

  choose(group: string, iteration: number | null): void {
    if (iteration === null) this.chosen.delete(group);
    else this.chosen.set(group, iteration);
    this.version++;
    for (const listener of this.listeners) listener();
  }

  select(path: string | null): void {
    this.selected = path;
    for (const listener of this.listeners) listener();
  }

  isFollowing(group: string): boolean {
    return !this.chosen.has(group);
  }

  private apply(event: RunEvent): void {
    this.events.push(event);
    const data = event.data ?? {};
    if (event.type === "run.started" || event.type === "run.resumed") {
      this.runStatus = "running";
      this.startedAt ??= event.ts;
      this.endedAt = null;
      return;
    }
    const ending = RUN_ENDS[event.type];
    if (ending) {
      this.runStatus = ending;
      this.endedAt = ending === "paused" ? null : event.ts;
      return;
    }
    if (!event.node) return;
    this.noteIterations(event.node);
    const before = this.node(event.node);
    const next: NodeState = { ...before, path: event.node, firstSeq: before.firstSeq || event.seq };
    const attempt = typeof data.attempt === "number" ? data.attempt : next.attempts.length;
    switch (event.type) {
      case "node.started":
        next.status = "running";
        next.type = typeof data.type === "string" ? data.type : next.type;
        next.error = null;
        next.pause = null;
        next.reply = null; // a new attempt streams a new reply
        next.attempts = [...next.attempts, { attempt, start: event.ts, end: null, outcome: "running" }];
        break;
      case "node.retrying":
        next.status = "retrying";
        next.attempts = closeAttempt(next.attempts, event.ts, "failed", data.error as RunError);
        break;
      case "node.completed":
        next.status = "completed";
        next.durationMs = numberOr(data.duration_ms, next.durationMs);
        next.ports = Array.isArray(data.ports) ? (data.ports as string[]) : [];
        next.attempts = closeAttempt(next.attempts, event.ts, "completed");
        break;
      case "node.failed":
        next.status = "failed";
        next.error = (data.error as RunError | undefined) ?? null;
        next.handled = typeof data.handled === "string" ? data.handled : null;
        next.attempts = closeAttempt(next.attempts, event.ts, "failed", next.error ?? undefined);
        break;
      case "node.skipped":
        next.status = "skipped";
        break;
      case "node.cancelled":
        next.status = "cancelled";
        next.attempts = closeAttempt(next.attempts, event.ts, "cancelled");
        break;
      case "node.paused":
        next.status = "paused";
        next.pause = data as unknown as Waiting;
        next.attempts = closeAttempt(next.attempts, event.ts, "paused");
        break;
      case "node.chunk":
        next.chunks = keepLatest(next.chunks, data.data);
        next.chunkCount += 1;
        next.reply = foldChunk(next.reply, data.data);
        break;
      case "log":
        next.logs = [
          ...next.logs,
          {
            seq: event.seq,
            ts: event.ts,
            level: typeof data.level === "string" ? data.level : "info",
            message: typeof data.message === "string" ? data.message : JSON.stringify(data),
            ...(typeof data.stream === "string" ? { stream: data.stream } : {}),
          },
        ];
        break;
      default:
        return;
    }
    this.nodes.set(event.node, next);
  }

  private noteIterations(path: string): void {
    if (!path.includes("[")) return;
    const { key, iterations } = splitPath(path);
    const groups = key.split(".").slice(0, -1);
    let group = "";
    groups.forEach((part, i) => {
      group = group ? `${group}.${part}` : part;
      const index = iterations[i];
      if (index !== undefined && index > (this.latest.get(group) ?? -1)) this.latest.set(group, index);
    });
  }
}

function closeAttempt(
  attempts: Attempt[],
  ts: number,
  outcome: NodeStatus,
  error?: RunError,
): Attempt[] {
  const last = attempts[attempts.length - 1];
  if (!last || last.end !== null) return attempts;
  return [...attempts.slice(0, -1), { ...last, end: ts, outcome, ...(error ? { error } : {}) }];
}

function keepLatest(chunks: unknown[], chunk: unknown): unknown[] {
  const kept = chunks.length < CHUNKS_KEPT ? chunks.slice() : chunks.slice(chunks.length - CHUNKS_KEPT + 1);
  kept.push(chunk);
  return kept;
}

function numberOr(value: unknown, fallback: number | null): number | null {
  return typeof value === "number" ? value : fallback;
}

function frameScheduler(flush: () => void): void {
  // A hidden tab gets no animation frames; its events still apply, a little later.
  if (typeof document !== "undefined" && document.hidden) setTimeout(flush, 200);
  else if (typeof requestAnimationFrame === "function") requestAnimationFrame(flush);
  else setTimeout(flush, 0);
}
