import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { ReplySection, StreamedChunks } from "./Reply";
import { foldChunk, formatUsage, usageOf, type Reply } from "./reply";

const fold = (chunks: unknown[]): Reply | null => chunks.reduce<Reply | null>((reply, chunk) => foldChunk(reply, chunk), null);

describe("a streamed reply", () => {
  it("grows by its deltas, and a later step starts a new reply", () => {
    const reply = fold([
      { delta: "Let me ", step: 1 },
      { delta: "check.", step: 1 },
      { tool_call: { step: 1, id: "c1", name: "weather" } },
      { tool_call: { step: 1, id: "c2", name: "clock" } },
      { tool_result: { step: 1, id: "c1", name: "weather", output: '{"sky":"clear"}' } },
      { tool_result: { step: 1, id: "c2", name: "clock", error: { code: "timeout", message: "took too long" } } },
      { tool_chunk: { name: "weather", call_id: "c1", data: { delta: "not the reply" } } },
      { delta: "It is ", step: 2 },
      { delta: "sunny.", step: 2 },
    ]);
    expect(reply?.step).toBe(2);
    expect(reply?.text).toBe("It is sunny.");
    expect(reply?.tools).toEqual([
      { step: 1, id: "c1", name: "weather", status: "done" },
      { step: 1, id: "c2", name: "clock", status: "failed", error: "took too long" },
    ]);
  });

  it("leaves chunks of other nodes alone", () => {
    expect(fold([{ progress: 0.5 }, "text", 3, null, [1]])).toBeNull();
    const reply = fold([{ delta: "hi", step: 1 }]);
    expect(foldChunk(reply, { rows: 10 })).toBe(reply);
  });

  it("reads the tokens of an output, saying when they are estimated", () => {
    const usage = { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42, estimated: false };
    expect(formatUsage(usageOf({ text: "x", usage }) ?? fail())).toBe("tokens: 12 prompt + 30 completion = 42");
    expect(formatUsage(usageOf({ usage: { ...usage, estimated: true } }) ?? fail())).toBe(
      "tokens: 12 prompt + 30 completion = 42 (estimated)",
    );
    expect(usageOf({ value: 1 })).toBeNull();
    expect(usageOf({ usage: { prompt_tokens: "12" } })).toBeNull();
  });
});

describe("the reply section", () => {
  it("shows the text, each tool call's state and the tokens", () => {
    const reply = fold([
      { delta: "Looking it up", step: 1 },
      { tool_call: { step: 1, id: "c1", name: "search" } },
      { tool_call: { step: 1, id: "c2", name: "fetch" } },
      { tool_result: { step: 1, id: "c2", name: "fetch", output: "{}" } },
    ]);
    const html = renderToStaticMarkup(
      createElement(ReplySection, {
        reply,
        usage: { prompt: 5, completion: 7, total: 12, estimated: true },
        running: true,
      }),
    );
    expect(html).toContain("Looking it up");
    expect(html).toMatch(/search<\/span> <span[^>]*>running</);
    expect(html).toMatch(/fetch<\/span> <span[^>]*>done</);
    expect(html).toContain("tokens: 5 prompt + 7 completion = 12 (estimated)");
  });

  it("is absent for a node that streams no reply", () => {
    expect(renderToStaticMarkup(createElement(ReplySection, { reply: null, usage: null, running: true }))).toBe("");
  });

  it("folds the raw chunks away under a reply, and says when older ones were dropped", () => {
    const folded = renderToStaticMarkup(createElement(StreamedChunks, { chunks: [{ delta: "a" }], count: 900, folded: true }));
    expect(folded).toContain("Streamed chunks");
    expect(folded).toContain("(900)");
    expect(folded).toContain("the latest 1 are kept here");
    expect(folded).not.toMatch(/<details[^>]* open/);
    expect(folded).not.toContain("&quot;delta&quot;");
    const shown = renderToStaticMarkup(createElement(StreamedChunks, { chunks: [{ rows: 3 }], count: 1, folded: false }));
    expect(shown).toMatch(/<details[^>]* open/);
    expect(shown).toContain("&quot;rows&quot;: 3");
  });
});

function fail(): never {
  throw new Error("expected a value");
}
