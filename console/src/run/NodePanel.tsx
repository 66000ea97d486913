// What one node did: status, runtime, duration, attempts, the reply it streams, parameters,
// output, error, logs and streamed chunks. Live parts come from the events; the output (and the
// tokens a reply used) from the run's result.
import { useSyncExternalStore } from "react";
import type { NodeResult, NodeType } from "../api/types";
import { Json, StatusBadge } from "../components/common";
import { formatDuration, formatTime } from "../format";
import { splitPath, type WorkflowGraph } from "../graph/model";
import { useRunStore } from "./context";
import { ReplySection, StreamedChunks } from "./Reply";
import { usageOf } from "./reply";
import { PENDING } from "./store";

interface Props {
  graph: WorkflowGraph;
  result: NodeResult | undefined;
  catalog: Map<string, NodeType>;
  onClose: () => void;
}

export function NodePanel({ graph, result, catalog, onClose }: Props) {
  const store = useRunStore();
  const path = useSyncExternalStore(store.subscribe, () => store.selected);
  const state = useSyncExternalStore(store.subscribe, () => (path ? (store.nodes.get(path) ?? PENDING) : PENDING));
  if (!path) return null;
  const node = graph.byKey.get(splitPath(path).key);
  const type = state.type ?? node?.type ?? "";
  const runtime = catalog.get(type)?.runtime ?? "—";
  const error = state.error ?? result?.error ?? null;
  // The result may lag the events (it is read again when the run settles): trust it only when
  // the events agree, or have not arrived yet.
  const completed = state.status === "completed" || (!state.attempts.length && result?.status === "completed");
  const usage = completed ? usageOf(result?.output) : null;
  return (
    <aside className="node-panel" aria-label={`Node ${path}`}>
      <header className="section-head">
        <h2 className="mono">{path}</h2>
        <button type="button" onClick={onClose} aria-label="Close node details">
          ✕
        </button>
      </header>
      <dl className="facts">
        <dt>status</dt>
        <dd>
          <StatusBadge status={state.status} />
          {state.handled === "error_port" ? <span className="muted"> routed to its error port</span> : null}
        </dd>
        <dt>type</dt>
        <dd className="mono">{type}</dd>
        <dt>runtime</dt>
        <dd>{runtime}</dd>
        <dt>duration</dt>
        <dd>{formatDuration(state.durationMs ?? result?.duration_ms)}</dd>
        <dt>attempts</dt>
        <dd>{state.attempts.length || result?.attempts || 0}</dd>
        {state.ports.length ? (
          <>
            <dt>ports taken</dt>
            <dd>{state.ports.join(", ")}</dd>
          </>
        ) : null}
      </dl>
      {state.attempts.length ? (
        <table className="table compact" aria-label="Attempts">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">started</th>
              <th scope="col">took</th>
              <th scope="col">outcome</th>
            </tr>
          </thead>
          <tbody>
            {state.attempts.map((a) => (
              <tr key={a.attempt}>
                <td>{a.attempt}</td>
                <td>{formatTime(a.start)}</td>
                <td>{a.end ? formatDuration((a.end - a.start) * 1000) : "…"}</td>
                <td>
                  {a.outcome}
                  {a.error ? <span className="muted"> {a.error.message}</span> : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {error ? (
        <>
          <h3>Error</h3>
          <p className="error-note">
            <span className="mono">{error.code}</span>: {error.message}
            {error.field ? ` (field ${error.field})` : ""}
          </p>
        </>
      ) : null}
      {state.pause ? (
        <>
          <h3>Waiting</h3>
          <Json value={state.pause} label="pause" />
        </>
      ) : null}
      <ReplySection
        key={`reply:${path}`}
        reply={state.reply}
        usage={usage}
        running={state.status === "running"}
      />
      <h3>Parameters</h3>
      <p className="muted small">As the document writes them; templates resolve when the node runs.</p>
      <Json value={node?.doc.with ?? null} label="parameters" />
      <h3>Output</h3>
      <Json value={result?.output ?? null} label="output" />
      <h3>Logs</h3>
      {state.logs.length ? (
        <pre className="logs" tabIndex={0}>
          {state.logs.map((line) => `${formatTime(line.ts)} ${line.level}${line.stream ? ` [${line.stream}]` : ""} ${line.message}`).join("\n")}
        </pre>
      ) : (
        <p className="muted">none</p>
      )}
      <StreamedChunks
        key={`chunks:${path}`}
        chunks={state.chunks}
        count={state.chunkCount}
        folded={state.reply !== null}
      />
    </aside>
  );
}
