// A node's streamed reply, folded from its chunks: `{delta, step}` pieces of the model's text
// (a later step is a new reply, after tool calls or a repair) and `{tool_call}` /
// `{tool_result}` announcements, as `llm.chat` streams them. The text grows by concatenation,
// which costs no copy of what came before.

export type ToolStatus = "running" | "done" | "failed";

export interface ToolCall {
  step: number;
  id: string;
  name: string;
  status: ToolStatus;
  error?: string;
}

export interface Reply {
  /** The step (request to the model) the text belongs to: the latest that streamed text. */
  step: number;
  text: string;
  tools: ToolCall[];
}

export interface Usage {
  prompt: number;
  completion: number;
  total: number;
  estimated: boolean;
}

/** The reply after one chunk: the same object when the chunk is not part of a reply. */
export function foldChunk(reply: Reply | null, data: unknown): Reply | null {
  if (!isRecord(data)) return reply;
  if (typeof data.delta === "string") {
    const step = typeof data.step === "number" ? data.step : (reply?.step ?? 1);
    if (!reply) return { step, text: data.delta, tools: [] };
    if (step !== reply.step) return { ...reply, step, text: data.delta };
    return { ...reply, text: reply.text + data.delta };
  }
  if (isRecord(data.tool_call)) {
    const call = toolOf(data.tool_call, "running");
    const base = reply ?? { step: call.step, text: "", tools: [] };
    return { ...base, tools: [...base.tools, call] };
  }
  if (isRecord(data.tool_result)) {
    const result = data.tool_result;
    const done = toolOf(result, isRecord(result.error) ? "failed" : "done");
    if (isRecord(result.error) && typeof result.error.message === "string") done.error = result.error.message;
    const base = reply ?? { step: done.step, text: "", tools: [] };
    const at = base.tools.findIndex((t) => t.id === done.id && t.step === done.step);
    const tools = at < 0 ? [...base.tools, done] : base.tools.map((t, i) => (i === at ? done : t));
    return { ...base, tools };
  }
  return reply;
}

/** The token counts of an output that reports them (`usage` as `llm.chat` gives it). */
export function usageOf(output: unknown): Usage | null {
  if (!isRecord(output) || !isRecord(output.usage)) return null;
  const { prompt_tokens: prompt, completion_tokens: completion, total_tokens: total, estimated } = output.usage;
  if (typeof prompt !== "number" || typeof completion !== "number" || typeof total !== "number") return null;
  return { prompt, completion, total, estimated: estimated === true };
}

export function formatUsage(usage: Usage): string {
  const line = `tokens: ${usage.prompt} prompt + ${usage.completion} completion = ${usage.total}`;
  return usage.estimated ? `${line} (estimated)` : line;
}

function toolOf(data: Record<string, unknown>, status: ToolStatus): ToolCall {
  return {
    step: typeof data.step === "number" ? data.step : 0,
    id: typeof data.id === "string" ? data.id : "",
    name: typeof data.name === "string" ? data.name : "?",
    status,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
