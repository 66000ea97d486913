import { describe, expect, it } from "vitest";
import type { RunEvent } from "../api/types";
import { CHUNKS_KEPT, RunStore } from "./store";

let seq = 0;
const ev = (type: string, node: string | null, data: Record<string, unknown> = {}): RunEvent => ({
  run_id: "r",
  seq: ++seq,
  type,
  ts: seq,
  node,
  data,
});

describe("RunStore", () => {
  it("applies a frame's events at once and notifies once", () => {
    const frames: (() => void)[] = [];
    const store = new RunStore((flush) => frames.push(flush));
    let notified = 0;
    store.subscribe(() => notified++);
    store.push([ev("run.started", null), ev("node.started", "a", { attempt: 1 })]);
    store.push([ev("node.completed", "a", { attempt: 1, duration_ms: 3 })]);
    expect(store.node("a").status).toBe("pending");
    expect(frames).toHaveLength(1);
    frames[0]?.();
    expect(notified).toBe(1);
    expect(store.node("a").status).toBe("completed");
    expect(store.node("a").attempts).toHaveLength(1);
  });

  it("keeps an unchanged node's state object, so its view does not re-render", () => {
    const store = new RunStore((flush) => flush());
    store.push([ev("node.started", "a", { attempt: 1 }), ev("node.started", "b", { attempt: 1 })]);
    const a = store.node("a");
    store.push([ev("node.completed", "b", { attempt: 1 })]);
    expect(store.node("a")).toBe(a);
  });

  it("records attempts, retries, errors and the iterations of loop bodies", () => {
    const store = new RunStore((flush) => flush());
    const error = { message: "boom", code: "x" };
    store.push([
      ev("node.started", "each[0].tick", { attempt: 1 }),
      ev("node.retrying", "each[0].tick", { attempt: 1, error }),
      ev("node.started", "each[0].tick", { attempt: 2 }),
      ev("node.failed", "each[0].tick", { error, handled: "error_port" }),
      ev("node.started", "each[3].tick", { attempt: 1 }),
    ]);
    const tick = store.node("each[0].tick");
    expect(tick.status).toBe("failed");
    expect(tick.handled).toBe("error_port");
    expect(tick.attempts.map((a) => a.outcome)).toEqual(["failed", "failed"]);
    expect(store.iterationCount("each")).toBe(4);
    expect(store.iterationOf("each")).toBe(3);
    store.choose("each", 0);
    expect(store.iterationOf("each")).toBe(0);
  });

  it("folds a streamed reply as it comes, keeping the latest raw chunks only", () => {
    const store = new RunStore((flush) => flush());
    store.push([ev("node.started", "ask", { attempt: 1, type: "llm.chat" }), ev("node.started", "other", { attempt: 1 })]);
    const other = store.node("other");
    const pieces = Array.from({ length: 2000 }, (_, i) => `w${i} `);
    store.push(pieces.map((delta) => ev("node.chunk", "ask", { data: { delta, step: 1 } })));
    store.push([ev("node.chunk", "ask", { data: { tool_call: { step: 1, id: "c1", name: "search" } } })]);
    const ask = store.node("ask");
    expect(ask.reply?.text).toBe(pieces.join(""));
    expect(ask.reply?.tools.map((t) => `${t.name} ${t.status}`)).toEqual(["search running"]);
    expect(ask.chunkCount).toBe(2001);
    expect(ask.chunks).toHaveLength(CHUNKS_KEPT);
    expect(ask.chunks.at(-2)).toEqual({ delta: "w1999 ", step: 1 });
    expect(ask.chunks.at(-1)).toEqual({ tool_call: { step: 1, id: "c1", name: "search" } });
    expect(store.node("other")).toBe(other);

    store.push([ev("node.chunk", "ask", { data: { delta: "Done.", step: 2 } })]);
    expect(store.node("ask").reply?.text).toBe("Done.");
    // A retry's new attempt streams a new reply.
    store.push([ev("node.retrying", "ask", { attempt: 1 }), ev("node.started", "ask", { attempt: 2 })]);
    expect(store.node("ask").reply).toBeNull();
    expect(store.node("ask").chunkCount).toBe(2002);
  });
});
