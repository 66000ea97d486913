// A Gantt chart of node attempts, from the events: one row per node path in the order nodes
// first started, one bar per attempt coloured by how it ended.
import { useEffect, useState } from "react";
import { formatDuration } from "../format";
import { useRunStore, useRunVersion } from "./context";

const MAX_ROWS = 1500;

export function Timeline() {
  const store = useRunStore();
  useRunVersion();
  const running = store.runStatus === "running";
  const [now, setNow] = useState(() => Date.now() / 1000);
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => setNow(Date.now() / 1000), 500);
    return () => clearInterval(timer);
  }, [running]);
  const rows = [...store.nodes.values()].filter((n) => n.attempts.length).sort((a, b) => a.firstSeq - b.firstSeq);
  const start = store.startedAt ?? rows[0]?.attempts[0]?.start ?? now;
  let end = store.endedAt ?? (running ? now : start);
  for (const row of rows) for (const a of row.attempts) end = Math.max(end, a.end ?? (running ? now : a.start));
  const span = Math.max(end - start, 0.001);
  const pct = (t: number) => `${(((t - start) / span) * 100).toFixed(3)}%`;
  return (
    <div className="timeline" role="table" aria-label="Timeline of node attempts">
      <div className="timeline-axis" role="row">
        <span role="columnheader">node</span>
        <span role="columnheader" className="axis">
          <span>0</span>
          <span>{formatDuration(span * 1000)}</span>
        </span>
      </div>
      {rows.slice(0, MAX_ROWS).map((row) => (
        <div className="timeline-row" role="row" key={row.path}>
          <button type="button" role="rowheader" className="link mono" onClick={() => store.select(row.path)} title={row.path}>
            {row.path}
          </button>
          <div className="timeline-track" role="cell">
            {row.attempts.map((a) => {
              const stop = a.end ?? (running ? now : a.start);
              return (
                <span
                  key={a.attempt}
                  className={`bar status-${a.outcome}`}
                  style={{ left: pct(a.start), width: `max(2px, ${(((stop - a.start) / span) * 100).toFixed(3)}%)` }}
                  title={`attempt ${a.attempt}: ${a.outcome}, ${formatDuration((stop - a.start) * 1000)}`}
                />
              );
            })}
          </div>
        </div>
      ))}
      {rows.length > MAX_ROWS ? <p className="muted">{rows.length - MAX_ROWS} more nodes not drawn.</p> : null}
      {!rows.length ? <p className="muted">No node has started yet.</p> : null}
    </div>
  );
}
