// What a person can do to a run: cancel it, retry it from the failed nodes, run it again with
// the same or edited inputs, and answer an approval it waits for.
import { useState } from "react";
import { api, unwrap } from "../api/client";
import { messageOf, problemOf } from "../api/errors";
import type { RunRecord, RunResult, RunStatus, RunSummary, Waiting } from "../api/types";
import { SchemaForm } from "../forms/SchemaForm";
import { navigate } from "../router";

interface Props {
  runId: string;
  status: RunStatus;
  record: RunRecord;
  onChanged: () => void;
}

export function Actions({ runId, status, record, onChanged }: Props) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState(false);
  const path = { params: { path: { run_id: runId } } };

  const act = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (reason) {
      setError(messageOf(reason));
    } finally {
      setBusy(false);
    }
  };
  const cancel = () =>
    act(async () => {
      await unwrap(api.POST("/api/v1/runs/{run_id}/cancel", path));
      onChanged();
    });
  const retry = () =>
    act(async () => {
      await unwrap(api.POST("/api/v1/runs/{run_id}/retry", path));
      onChanged();
    });
  const rerun = () =>
    act(async () => {
      const summary = (await unwrap(api.POST("/api/v1/runs/{run_id}/rerun", path))) as RunSummary;
      navigate(`/runs/${summary.execution_id}`);
    });
  const rerunWith = (inputs: Record<string, unknown>) =>
    act(async () => {
      navigate(`/runs/${await startWith(record, inputs)}`);
    });

  const live = status === "running" || status === "pending" || status === "paused";
  return (
    <div className="actions">
      <div className="buttons">
        {live ? (
          <button type="button" onClick={() => void cancel()} disabled={busy}>
            Cancel run
          </button>
        ) : null}
        {status === "failed" ? (
          <button type="button" onClick={() => void retry()} disabled={busy}>
            Retry from failed node
          </button>
        ) : null}
        {!live ? (
          <>
            <button type="button" onClick={() => void rerun()} disabled={busy}>
              Re-run
            </button>
            <button type="button" onClick={() => setEditing((e) => !e)} aria-expanded={editing} disabled={busy}>
              Re-run with edited inputs…
            </button>
          </>
        ) : null}
      </div>
      {error ? (
        <p className="error-note" role="alert">
          {error}
        </p>
      ) : null}
      {editing ? (
        <SchemaForm
          label="Inputs of the new run"
          schema={record.document.inputs}
          initial={record.inputs}
          submitLabel="Start new run"
          busy={busy}
          onSubmit={(inputs) => void rerunWith(inputs)}
          onCancel={() => setEditing(false)}
        />
      ) : null}
    </div>
  );
}

/** A new run of the same workflow with other inputs: of the same deployed version when it
 * still is deployed, else of the document the run kept. */
async function startWith(record: RunRecord, inputs: Record<string, unknown>): Promise<string> {
  if (record.workflow_version !== null) {
    const { data, response } = await api.POST("/api/v1/workflows/{workflow_id}/runs", {
      params: { path: { workflow_id: record.workflow_id }, query: { version: record.workflow_version } },
      body: { inputs, wait: false },
    });
    if (response.ok && data) return (data as { execution_id: string }).execution_id;
    // 404: no longer deployed; the run's own document still starts it.
    if (response.status !== 404) throw await problemOf(response);
  }
  const accepted = await unwrap(
    api.POST("/api/v1/runs", { body: { workflow: record.document as Record<string, unknown>, inputs, wait: false } }),
  );
  return (accepted as { execution_id: string }).execution_id;
}

export function Approvals({ runId, result, onResumed }: { runId: string; result: RunResult; onResumed: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const waiting: Waiting[] = result.pause?.waiting ?? [];
  if (result.status !== "paused" || !waiting.length) return null;
  const resume = async (inputs: Record<string, unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.POST("/api/v1/runs/{run_id}/resume", { params: { path: { run_id: runId } }, body: { inputs } }));
      onResumed();
    } catch (reason) {
      setError(messageOf(reason));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="approval" aria-labelledby="approval-title">
      <h2 id="approval-title">Waiting for you</h2>
      {waiting.map((wait) => (
        <div key={wait.node} className="approval-item">
          <p>
            <strong className="mono">{wait.node}</strong> ({wait.kind})
            {wait.wake_at ? ` until ${new Date(wait.wake_at * 1000).toLocaleString()}` : ""}
          </p>
          {wait.prompt ? <p className="prompt">{wait.prompt}</p> : null}
          {wait.kind === "approval" ? (
            <SchemaForm
              label={`Answer to ${wait.node}`}
              schema={(wait.schema ?? null)}
              submitLabel="Submit and resume"
              busy={busy}
              onSubmit={(inputs) => void resume(inputs)}
            />
          ) : null}
        </div>
      ))}
      {error ? (
        <p className="error-note" role="alert">
          {error}
        </p>
      ) : null}
    </section>
  );
}
