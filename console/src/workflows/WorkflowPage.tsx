import { useState } from "react";
import { api, unwrap } from "../api/client";
import { messageOf } from "../api/errors";
import type { WorkflowDocument } from "../api/types";
import { ErrorNote, Json, Section } from "../components/common";
import { formatTime } from "../format";
import { SchemaForm } from "../forms/SchemaForm";
import { useLoad } from "../hooks";
import { Link, navigate } from "../router";
import { triggerText } from "./WorkflowsPage";

export function WorkflowPage({ workflowId }: { workflowId: string }) {
  const [version, setVersion] = useState<number | null>(null);
  const found = useLoad(
    () =>
      unwrap(
        api.GET("/api/v1/workflows/{workflow_id}", {
          params: { path: { workflow_id: workflowId }, query: version ? { version } : {} },
        }),
      ),
    `${workflowId}@${version ?? "latest"}`,
  );
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const detail = found.data;
  const document = detail?.document as WorkflowDocument | undefined;
  const shown = detail ? (version ?? Math.max(...detail.versions.map((v) => v.version))) : null;

  const start = async (inputs: Record<string, unknown>) => {
    setBusy(true);
    setError(null);
    try {
      const accepted = await unwrap(
        api.POST("/api/v1/workflows/{workflow_id}/runs", {
          params: { path: { workflow_id: workflowId }, query: shown ? { version: shown } : {} },
          body: { inputs, wait: false },
        }),
      );
      navigate(`/runs/${(accepted as { execution_id: string }).execution_id}`);
    } catch (reason) {
      setError(messageOf(reason));
      setBusy(false);
    }
  };

  return (
    <main className="page">
      <p className="crumbs">
        <Link href="/workflows">Workflows</Link> / {workflowId}
      </p>
      <ErrorNote error={found.error} />
      {detail ? (
        <>
          <header className="page-head">
            <h1>{detail.name ?? detail.id}</h1>
            <Link href={`/runs?workflow=${encodeURIComponent(detail.id)}`}>Runs of this workflow</Link>
          </header>
          {detail.description ? <p>{detail.description}</p> : null}
          <div className="columns">
            <div>
              <Section title={`Run version ${shown ?? ""}`}>
                <SchemaForm
                  key={`${detail.id}@${shown ?? 0}`}
                  label="Run inputs"
                  schema={(detail.inputs ?? document?.inputs)}
                  submitLabel="Run"
                  busy={busy}
                  onSubmit={(inputs) => void start(inputs)}
                />
                {error ? (
                  <p className="error-note" role="alert">
                    {error}
                  </p>
                ) : null}
              </Section>
              <Section title="Triggers">
                {detail.triggers?.length ? (
                  <ul>
                    {detail.triggers.map((t, i) => (
                      <li key={i}>{triggerText(t)}</li>
                    ))}
                  </ul>
                ) : (
                  <p className="muted">Started by people and the API only.</p>
                )}
              </Section>
              <Section title="Versions">
                <ul className="versions">
                  {[...detail.versions].reverse().map((v) => (
                    <li key={v.version}>
                      <button type="button" className="link" aria-pressed={v.version === shown} onClick={() => setVersion(v.version)}>
                        v{v.version}
                      </button>{" "}
                      <span className="muted">
                        {formatTime(v.created_at)} · <span className="mono">{v.hash.slice(0, 12)}</span>
                      </span>
                    </li>
                  ))}
                </ul>
              </Section>
            </div>
            <Section title="Document">
              <Json value={detail.document} label="workflow document" />
            </Section>
          </div>
        </>
      ) : null}
    </main>
  );
}
