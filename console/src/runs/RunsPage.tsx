// The history: newest first, refreshed every 2 s, filtered by workflow and status, paged with
// the server's cursor.
import { api, unwrap } from "../api/client";
import { RUN_STATUSES, type RunSummary } from "../api/types";
import { ErrorNote, StatusBadge } from "../components/common";
import { formatDuration, formatTime, shortId } from "../format";
import { useLoad } from "../hooks";
import { Link, navigate } from "../router";

const PAGE = 25;

export function RunsPage({ search }: { search: URLSearchParams }) {
  const workflow = search.get("workflow") ?? "";
  const status = search.get("status") ?? "";
  const cursor = search.get("cursor") ?? "";
  const back = search.getAll("back");
  const runs = useLoad(
    () =>
      unwrap(
        api.GET("/api/v1/runs", {
          params: {
            query: {
              limit: PAGE,
              ...(workflow ? { workflow } : {}),
              ...(status ? { status: status as never } : {}),
              ...(cursor ? { cursor } : {}),
            },
          },
        }),
      ),
    `${workflow}|${status}|${cursor}`,
    2000,
  );
  const workflows = useLoad(() => unwrap(api.GET("/api/v1/workflows")), "workflows");

  const go = (changes: Record<string, string | string[] | null>) => {
    const next = new URLSearchParams(search);
    for (const [key, value] of Object.entries(changes)) {
      next.delete(key);
      if (Array.isArray(value)) value.forEach((v) => next.append(key, v));
      else if (value) next.set(key, value);
    }
    const query = next.toString();
    navigate(`/runs${query ? `?${query}` : ""}`);
  };
  const filter = (key: string, value: string) => go({ [key]: value, cursor: null, back: null });
  const list = (runs.data?.runs ?? []) as RunSummary[];
  const names = new Set((workflows.data?.workflows ?? []).map((w) => w.id));
  if (workflow) names.add(workflow);

  return (
    <main className="page">
      <header className="page-head">
        <h1>Runs</h1>
        <div className="filters">
          <label>
            Workflow{" "}
            <select value={workflow} onChange={(e) => filter("workflow", e.target.value)}>
              <option value="">all</option>
              {[...names].sort().map((name) => (
                <option key={name}>{name}</option>
              ))}
            </select>
          </label>
          <label>
            Status{" "}
            <select value={status} onChange={(e) => filter("status", e.target.value)}>
              <option value="">all</option>
              {RUN_STATUSES.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </label>
        </div>
      </header>
      <ErrorNote error={runs.error} />
      <table className="table runs">
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col">Workflow</th>
            <th scope="col">Status</th>
            <th scope="col">Trigger</th>
            <th scope="col">Started</th>
            <th scope="col">Duration</th>
            <th scope="col">Nodes</th>
          </tr>
        </thead>
        <tbody>
          {list.map((run) => (
            <tr key={run.execution_id} data-run={run.execution_id}>
              <td>
                <Link href={`/runs/${run.execution_id}`} className="mono">
                  {shortId(run.execution_id)}
                </Link>
              </td>
              <td>
                {run.workflow_id}
                {run.workflow_version ? <span className="muted"> v{run.workflow_version}</span> : null}
              </td>
              <td>
                <StatusBadge status={run.status} />
              </td>
              <td>{run.trigger}</td>
              <td>{formatTime(run.started_at)}</td>
              <td>{formatDuration(run.duration_ms)}</td>
              <td className="muted">
                {Object.entries(run.nodes ?? {})
                  .map(([s, n]) => `${n} ${s}`)
                  .join(", ")}
              </td>
            </tr>
          ))}
          {!list.length && !runs.loading ? (
            <tr>
              <td colSpan={7} className="muted">
                No runs{workflow || status ? " match these filters" : " yet"}.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
      <nav className="pager" aria-label="Pages">
        <button type="button" disabled={!cursor} onClick={() => go({ cursor: back.at(-1) ?? null, back: back.slice(0, -1) })}>
          ← Newer
        </button>
        <button
          type="button"
          disabled={!runs.data?.next_cursor}
          onClick={() => go({ cursor: runs.data?.next_cursor ?? null, back: [...back, cursor] })}
        >
          Older →
        </button>
      </nav>
    </main>
  );
}
