// The run's event stream over fetch (EventSource cannot send Authorization): it parses
// server-sent events, remembers the last sequence number, and after a drop reconnects with
// Last-Event-ID so the server replays exactly what was missed. Duplicates are dropped and a gap
// (which the server promises not to leave) is read back from /events, so the caller sees every
// event once, in order.
import { ApiError, problemOf } from "./errors";
import { authHeaders } from "./token";
import type { RunEvent } from "./types";

export type Connection = "connecting" | "live" | "reconnecting" | "closed";

export interface StreamOptions {
  runId: string;
  onEvents: (events: RunEvent[]) => void;
  onConnection: (state: Connection) => void;
  /** Whether the run has ended: the stream closing then is the end, not a drop. */
  ended: () => boolean;
}

const RETRY_FIRST_MS = 250;
// The events after which the server closes the stream: the run is over.
const ENDINGS = new Set(["run.completed", "run.failed", "run.cancelled"]);
const RETRY_MAX_MS = 4000;

export function streamRun(options: StreamOptions): () => void {
  const { runId, onEvents, onConnection, ended } = options;
  const base = `/api/v1/runs/${encodeURIComponent(runId)}`;
  let lastSeq = 0;
  // Read through a function: the loop must see the change the returned stop function makes.
  const control = { stopped: false };
  const stopped = (): boolean => control.stopped;
  let controller: AbortController | null = null;
  let delay = RETRY_FIRST_MS;
  let finished = false;
  const over = (): boolean => finished || ended();

  const deliver = async (batch: RunEvent[]): Promise<void> => {
    const fresh: RunEvent[] = [];
    for (const event of batch) {
      if (event.seq <= lastSeq) continue;
      if (event.seq > lastSeq + 1) fresh.push(...(await readGap(base, lastSeq, event.seq)));
      fresh.push(event);
      lastSeq = event.seq;
      if (ENDINGS.has(event.type)) finished = true;
    }
    if (fresh.length) onEvents(fresh);
  };

  const connect = async (): Promise<void> => {
    while (!stopped()) {
      controller = new AbortController();
      onConnection(lastSeq === 0 ? "connecting" : "reconnecting");
      try {
        const headers: Record<string, string> = { ...authHeaders(), accept: "text/event-stream" };
        if (lastSeq > 0) headers["last-event-id"] = String(lastSeq);
        const response = await fetch(`${base}/stream`, { headers, signal: controller.signal });
        if (!response.ok || !response.body) throw await problemOf(response);
        onConnection("live");
        delay = RETRY_FIRST_MS;
        await readMessages(response.body, deliver);
        if (over()) break;
      } catch (error) {
        if (stopped()) return;
        // Without a valid token, retrying cannot help: the shell asks for one.
        if (error instanceof ApiError && error.status === 401) break;
      }
      if (over() || stopped()) break;
      onConnection("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }
    onConnection("closed");
  };

  void connect();
  return () => {
    control.stopped = true;
    controller?.abort();
  };
}

async function readGap(base: string, after: number, before: number): Promise<RunEvent[]> {
  const limit = before - after - 1;
  const response = await fetch(`${base}/events?after=${after}&limit=${limit}`, {
    headers: authHeaders(),
  });
  if (!response.ok) throw await problemOf(response);
  const body = (await response.json()) as { events: RunEvent[] };
  return body.events;
}

/** Reads SSE messages until the body ends; hands each chunk's complete events on at once. */
export async function readMessages(
  body: ReadableStream<Uint8Array>,
  deliver: (events: RunEvent[]) => Promise<void>,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    const { events, rest } = parseMessages(buffer);
    buffer = rest;
    if (events.length) await deliver(events);
  }
}

/** Complete messages in ``text`` (ended by a blank line) and what is left after them. */
export function parseMessages(text: string): { events: RunEvent[]; rest: string } {
  const events: RunEvent[] = [];
  const normalised = text.replace(/\r\n?/g, "\n");
  const blocks = normalised.split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (data.length) events.push(JSON.parse(data.join("\n")) as RunEvent);
  }
  return { events, rest };
}
