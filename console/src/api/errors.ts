import type { components } from "./schema";

export type Problem = components["schemas"]["Problem"];

/** An answer of the API that is not a success, with its problem+json body when it had one. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | null;

  constructor(status: number, problem: Problem | null, fallback: string) {
    super(problem?.detail ?? fallback);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }

  get code(): string {
    return this.problem?.code ?? `http_${this.status}`;
  }
}

/** Listeners told when the server asks for a token (401), so the shell can prompt once. */
const unauthorizedListeners = new Set<() => void>();

export function onUnauthorized(listener: () => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export function reportUnauthorized(): void {
  for (const listener of unauthorizedListeners) listener();
}

export async function problemOf(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.clone().json();
  } catch {
    // not JSON: the status says enough
  }
  return problemFrom(response, body);
}

export function problemFrom(response: Response, body: unknown): ApiError {
  const problem = body && typeof body === "object" && "code" in body ? (body as Problem) : null;
  if (response.status === 401) reportUnauthorized();
  return new ApiError(response.status, problem, `${response.status} ${response.statusText}`);
}

export function messageOf(error: unknown): string {
  if (error instanceof ApiError) {
    const where = error.problem?.node ? ` (node ${error.problem.node})` : "";
    const diagnostics = (error.problem?.diagnostics ?? []).map((d) => d.message).join("; ");
    return `${error.message}${where}${diagnostics ? `: ${diagnostics}` : ""}`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
