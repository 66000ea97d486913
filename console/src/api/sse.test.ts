import { describe, expect, it } from "vitest";
import { parseMessages } from "./sse";

const event = (seq: number) =>
  JSON.stringify({ run_id: "r", seq, type: "log", ts: 1, node: null, data: {} });

describe("parseMessages", () => {
  it("returns complete messages and keeps a partial one for later", () => {
    const text = `: heartbeat\n\nid: 1\nevent: log\ndata: ${event(1)}\n\nid: 2\ndata: {"run`;
    const { events, rest } = parseMessages(text);
    expect(events.map((e) => e.seq)).toEqual([1]);
    expect(rest).toBe('id: 2\ndata: {"run');
  });

  it("reads CRLF line ends as the SSE format allows", () => {
    const { events } = parseMessages(`id: 3\r\ndata: ${event(3)}\r\n\r\n`);
    expect(events.map((e) => e.seq)).toEqual([3]);
  });
});
