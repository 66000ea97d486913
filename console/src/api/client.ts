// The one typed client of the API (openapi-fetch over the generated schema), with the token
// and problem+json errors; plus the few calls whose answers the document leaves open.
import createClient, { type Middleware } from "openapi-fetch";
import { problemFrom, problemOf } from "./errors";
import type { paths } from "./schema";
import { authHeaders } from "./token";
import type { RunRecord, RunResult } from "./types";

const auth: Middleware = {
  onRequest({ request }) {
    for (const [key, value] of Object.entries(authHeaders())) request.headers.set(key, value);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: "" });
api.use(auth);

/** The data of an openapi-fetch answer, or its problem thrown as an ApiError. */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  // openapi-fetch has read the body already: its parsed problem is in `error`.
  if (!response.ok) throw problemFrom(response, error);
  return data as T;
}

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: authHeaders() });
  if (!response.ok) throw await problemOf(response);
  return (await response.json()) as T;
}

export function runResult(runId: string): Promise<RunResult> {
  return getJson<RunResult>(`/api/v1/runs/${encodeURIComponent(runId)}`);
}

export function runRecord(runId: string): Promise<RunRecord> {
  return getJson<RunRecord>(`/api/v1/runs/${encodeURIComponent(runId)}/record`);
}
