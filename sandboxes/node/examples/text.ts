/**
 * An example sidecar with two text node types. Build with `npm run build` (or ./build.sh), then
 * run `node dist/examples/text.js --listen 127.0.0.1:50051`.
 */
import { NodeError, Sidecar } from "@polyhost/sidecar";

const sidecar = new Sidecar("text");

/** Lower-case ASCII words joined by '-': accents are dropped, anything else separates words. */
function slugify(text: string): string {
  return text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

sidecar.node<{ text: string }, { slug: string }>(
  {
    type: "text.slugify",
    description: "Turns text into a URL slug (lower-case ASCII words joined by '-').",
    // Quick, with nothing to stream: the host may run it with one unary call.
    unary: true,
    inputSchema: {
      type: "object",
      properties: { text: { type: "string" } },
      required: ["text"],
      additionalProperties: false,
    },
    outputSchema: {
      type: "object",
      properties: { slug: { type: "string" } },
      required: ["slug"],
    },
  },
  async (params) => {
    if (typeof params.text !== "string") {
      throw new NodeError("invalid_input", "text must be a string", { field: "text" });
    }
    return { slug: slugify(params.text) };
  },
);

interface WordCount {
  word: string;
  count: number;
}

sidecar.node<{ text: string; top?: number }, { words: WordCount[]; total: number }>(
  {
    type: "text.wordfreq",
    description: "Counts the words of a text; returns the `top` most frequent (default 10) and the total.",
    inputSchema: {
      type: "object",
      properties: {
        text: { type: "string" },
        top: { type: "integer", default: 10 },
      },
      required: ["text"],
      additionalProperties: false,
    },
    outputSchema: {
      type: "object",
      properties: {
        words: {
          type: "array",
          items: {
            type: "object",
            properties: { word: { type: "string" }, count: { type: "integer" } },
            required: ["word", "count"],
          },
        },
        total: { type: "integer" },
      },
      required: ["words", "total"],
    },
  },
  async (params, call) => {
    const top = params.top ?? 10;
    if (!Number.isInteger(top) || top < 1) {
      throw new NodeError("invalid_input", `top must be an integer of at least 1, got ${JSON.stringify(top)}`, { field: "top" });
    }
    if (typeof params.text !== "string") {
      throw new NodeError("invalid_input", "text must be a string", { field: "text" });
    }
    const words = params.text.toLowerCase().match(/[\p{L}\p{N}]+(?:['’][\p{L}\p{N}]+)*/gu) ?? [];
    call.log("debug", `counting ${words.length} words`);
    const counts = new Map<string, number>();
    words.forEach((word, i) => {
      counts.set(word, (counts.get(word) ?? 0) + 1);
      // Long texts: report how far we are every 10,000 words, and stop if the host gave up.
      if (i % 10_000 === 9_999) {
        call.signal.throwIfAborted();
        call.progress(i / words.length, "counting");
      }
    });
    call.progress(1, `counted ${words.length} words, ${counts.size} distinct`);
    const ranked = [...counts.entries()]
      .map(([word, count]) => ({ word, count }))
      .sort((a, b) => b.count - a.count || (a.word < b.word ? -1 : a.word > b.word ? 1 : 0))
      .slice(0, top);
    return { words: ranked, total: words.length };
  },
);

void sidecar.serve();
