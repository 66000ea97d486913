// One run: its graph lighting up live, a timeline, the event log, inputs and outputs, the node
// panel and the actions. The events come from the stream (replayed from the start, then live);
// the result (outputs, pause, tokens) is read again whenever the run settles, and soon after the
// selected node completes.
import { useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import { api, runRecord, runResult, unwrap } from "../api/client";
import { isFinal, type NodeType, type RunResult } from "../api/types";
import { type Connection, streamRun } from "../api/sse";
import { ErrorNote, Json, StatusBadge } from "../components/common";
import { formatDuration, formatTime } from "../format";
import { type Layout, layout } from "../graph/layout";
import { graphOf } from "../graph/model";
import { useLoad } from "../hooks";
import { Link } from "../router";
import { Actions, Approvals } from "./Actions";
import { RunContext } from "./context";
import { EventLog } from "./EventLog";
import { Graph } from "./Graph";
import { NodePanel } from "./NodePanel";
import { usageOf } from "./reply";
import { formatRunUsage, ResultReader } from "./runResult";
import { RunStore } from "./store";
import { Timeline } from "./Timeline";

type Tab = "graph" | "timeline" | "events" | "io";
const TABS: [Tab, string][] = [
  ["graph", "Graph"],
  ["timeline", "Timeline"],
  ["events", "Events"],
  ["io", "Inputs & outputs"],
];

function timedLayout(graph: ReturnType<typeof graphOf>): Layout {
  // Measured for benchmarks/bench_console.py (performance entry "polyhost.layout").
  const start = performance.now();
  const result = layout(graph);
  performance.measure("polyhost.layout", { start, end: performance.now() });
  return result;
}

/** Changes each time the node at ``path`` completes (a retried node completes once more). */
function completionOf(store: RunStore, path: string | null): string | null {
  if (!path) return null;
  const node = store.node(path);
  return node.status === "completed" ? `${path}:${node.attempts.length}` : null;
}

export default function RunPage({ runId }: { runId: string }) {
  // The page is keyed by run id (App.tsx), so one store serves one run.
  const [store] = useState(() => new RunStore());
  const record = useLoad(() => runRecord(runId), `record:${runId}`);
  const catalog = useLoad(() => unwrap(api.GET("/api/v1/nodes")), "nodes");
  const [result, setResult] = useState<RunResult | null>(null);
  const [resultError, setResultError] = useState<unknown>(null);
  const [connection, setConnection] = useState<Connection>("connecting");
  const [tab, setTab] = useState<Tab>("graph");
  const status = useSyncExternalStore(store.subscribe, () => store.runStatus);
  const selected = useSyncExternalStore(store.subscribe, () => store.selected);
  const eventCount = useSyncExternalStore(store.subscribe, () => store.events.length);
  const selectedCompletion = useSyncExternalStore(store.subscribe, () => completionOf(store, store.selected));

  // Every read of the result goes through one reader: one request in flight at most, so
  // answers land in order and a busy run cannot pile requests up.
  const [reader] = useState(
    () =>
      new ResultReader(() =>
        runResult(runId).then(
          (value) => {
            setResult(value);
            setResultError(null);
          },
          (reason: unknown) => {
            setResultError(reason);
          },
        ),
      ),
  );
  const refresh = reader.now;
  useEffect(() => reader.cancel, [reader]);

  useEffect(() => {
    refresh();
    return streamRun({
      runId,
      onEvents: (events) => store.push(events),
      onConnection: setConnection,
      ended: () => isFinal(store.runStatus),
    });
  }, [runId, store, refresh]);

  // The result (outputs, errors, the pause's schema) changes when the run settles or pauses.
  useEffect(() => {
    if (status !== "running" && status !== "pending") refresh();
  }, [status, refresh]);
  // A paused run may be resumed or cancelled by someone else: look at it now and then.
  useEffect(() => {
    if (status !== "paused") return;
    const timer = setInterval(refresh, 5000);
    return () => clearInterval(timer);
  }, [status, refresh]);
  // A selected node's output and tokens are in the result: read it when the selection changes,
  // and again shortly after the selected node completes, not only once the run settles. Other
  // nodes' events cost a map lookup per frame, no read.
  const readFor = useRef<string | null>(null);
  useEffect(() => {
    if (selected !== readFor.current) {
      readFor.current = selected;
      if (selected) refresh();
    } else if (selectedCompletion) {
      reader.soon();
    }
  }, [selected, selectedCompletion, refresh, reader]);

  const graph = useMemo(() => (record.data ? graphOf(record.data.document) : null), [record.data]);
  const placed = useMemo(() => (graph ? timedLayout(graph) : null), [graph]);
  const types = useMemo(() => new Map<string, NodeType>((catalog.data ?? []).map((t) => [t.type, t])), [catalog.data]);
  // The stored result is the authority once it is final: cancelling a paused run records no
  // event, so the stream alone would keep showing it paused.
  const shownStatus = result && (isFinal(result.status) || !eventCount) ? result.status : status;
  const summary = record.data;
  const waiting = shownStatus === "paused" && Boolean(result?.pause?.waiting.length);
  const usage = usageOf(result);

  return (
    <RunContext.Provider value={store}>
      <main className="page run-page">
        <p className="crumbs">
          <Link href="/runs">Runs</Link> / <span className="mono">{runId}</span>
        </p>
        <ErrorNote error={record.error ?? resultError} />
        <header className="run-head">
          <h1>
            {summary ? (
              <Link href={`/workflows/${encodeURIComponent(summary.workflow_id)}`}>{summary.workflow_id}</Link>
            ) : (
              "Run"
            )}
            {summary?.workflow_version ? <span className="muted"> v{summary.workflow_version}</span> : null}{" "}
            <StatusBadge status={shownStatus} />
          </h1>
          <div className="meta-row">
          <dl className="facts inline">
            <dt>trigger</dt>
            <dd>{summary?.trigger ?? "—"}</dd>
            <dt>started</dt>
            <dd>{formatTime(summary?.started_at)}</dd>
            <dt>run time</dt>
            <dd>{formatDuration(result?.duration_ms)}</dd>
            {usage ? (
              <>
                <dt>tokens</dt>
                <dd>{formatRunUsage(usage)}</dd>
              </>
            ) : null}
            {store.startedAt !== null && store.endedAt !== null ? (
              <>
                <dt>elapsed</dt>
                <dd>{formatDuration((store.endedAt - store.startedAt) * 1000)}</dd>
              </>
            ) : null}
            <dt>stream</dt>
            <dd>
              <span className={`conn conn-${connection}`} data-connection={connection}>
                {connection}
              </span>
            </dd>
            {summary?.parent_run_id ? (
              <>
                <dt>re-run of</dt>
                <dd>
                  <Link className="mono" href={`/runs/${summary.parent_run_id}`}>
                    {summary.parent_run_id.slice(0, 10)}
                  </Link>
                </dd>
              </>
            ) : null}
          </dl>
          {summary ? <Actions runId={runId} status={shownStatus} record={summary} onChanged={refresh} /> : null}
          </div>
        </header>
        {result?.error && isFinal(shownStatus) ? (
          <p className="error-note" role="alert">
            Run failed at <span className="mono">{result.error.node ?? "?"}</span>: {result.error.message}
          </p>
        ) : null}
        <div className="tabs" role="tablist" aria-label="Run views">
          {TABS.map(([id, label]) => (
            <button
              key={id}
              type="button"
              role="tab"
              id={`tab-${id}`}
              aria-selected={tab === id}
              aria-controls={`panel-${id}`}
              onClick={() => setTab(id)}
            >
              {label}
              {id === "events" ? ` (${eventCount})` : ""}
            </button>
          ))}
        </div>
        <div className={`run-body${selected || waiting ? " with-panel" : ""}`}>
          <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`} className="tab-panel">
            {tab === "graph" && graph && placed ? <Graph graph={graph} layout={placed} /> : null}
            {tab === "timeline" ? <Timeline /> : null}
            {tab === "events" ? <EventLog /> : null}
            {tab === "io" ? (
              <div className="columns">
                <div>
                  <h2>Inputs</h2>
                  <Json value={summary?.inputs} label="inputs" />
                </div>
                <div>
                  <h2>Outputs</h2>
                  <Json value={result?.outputs} label="outputs" />
                  {result?.error ? (
                    <>
                      <h2>Error</h2>
                      <Json value={result.error} label="error" />
                    </>
                  ) : null}
                </div>
              </div>
            ) : null}
          </div>
          {selected || waiting ? (
            <div className="side">
              {waiting && result ? <Approvals runId={runId} result={result} onResumed={refresh} /> : null}
              {selected && graph ? (
                <NodePanel
                  graph={graph}
                  result={result?.nodes[selected]}
                  catalog={types}
                  onClose={() => store.select(null)}
                />
              ) : null}
            </div>
          ) : null}
        </div>
      </main>
    </RunContext.Provider>
  );
}
