// Objects the OpenAPI document leaves open (the run's result and record are documented in
// docs/http-api.md as "the object `polyhost run --json` prints"): typed here by hand.
import type { components } from "./schema";

export type RunSummary = components["schemas"]["RunSummaryModel"] & {
  nodes?: Record<string, number>;
  error?: RunError | null;
};
export type RunEvent = components["schemas"]["EventModel"];
export type WorkflowSummary = components["schemas"]["WorkflowSummary"];
export type WorkflowDetail = components["schemas"]["WorkflowDetail"];
export type NodeType = components["schemas"]["NodeTypeModel"];
export type Trigger = components["schemas"]["TriggerModel"];

export type RunStatus = "pending" | "running" | "paused" | "completed" | "failed" | "cancelled";
export const RUN_STATUSES: readonly RunStatus[] = [
  "pending",
  "running",
  "paused",
  "completed",
  "failed",
  "cancelled",
];

export interface RunError {
  message: string;
  code: string;
  node?: string | null;
  attempts?: number;
  field?: string | null;
}

export interface Waiting {
  node: string;
  kind: string;
  prompt?: string | null;
  schema?: JsonSchema | null;
  wake_at?: number | null;
}

export interface NodeResult {
  status: string;
  attempts: number;
  output: unknown;
  error: RunError | null;
  duration_ms: number | null;
}

export interface RunResult {
  execution_id: string;
  workflow_id: string;
  status: RunStatus;
  outputs: unknown;
  error: RunError | null;
  duration_ms: number;
  nodes: Record<string, NodeResult>;
  pause?: { waiting: Waiting[]; wake_at?: number | null } | null;
  usage?: components["schemas"]["UsageModel"] | null;
}

export interface RunRecord {
  execution_id: string;
  workflow_id: string;
  status: RunStatus;
  inputs: Record<string, unknown>;
  document: WorkflowDocument;
  source: string | null;
  manifests: string[];
  started_at: number;
  parent_run_id: string | null;
  workflow_version: number | null;
  trigger: string;
}

/** The parts of a workflow document the console draws. */
export interface WorkflowDocument {
  id?: string;
  name?: string;
  description?: string;
  inputs?: JsonSchema;
  nodes?: DocumentNode[];
  edges?: DocumentEdge[];
  outputs?: Record<string, unknown>;
}

export interface DocumentNode {
  id: string;
  type: string;
  name?: string;
  with?: Record<string, unknown>;
  when?: string;
  retry?: unknown;
  timeout?: unknown;
  on_error?: string;
  body?: { nodes?: DocumentNode[]; edges?: DocumentEdge[]; outputs?: Record<string, unknown> };
}

export interface DocumentEdge {
  from: string;
  to: string;
  port?: string;
}

export type JsonSchema = Record<string, unknown>;

export function isFinal(status: string): boolean {
  return status === "completed" || status === "failed" || status === "cancelled";
}
