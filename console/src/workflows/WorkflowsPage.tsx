import { api, unwrap } from "../api/client";
import type { Trigger } from "../api/types";
import { ErrorNote } from "../components/common";
import { formatTime } from "../format";
import { useLoad } from "../hooks";
import { Link } from "../router";

export function triggerText(trigger: Trigger): string {
  if (trigger.schedule) return `schedule ${trigger.schedule}${trigger.tz ? ` (${trigger.tz})` : ""}`;
  if (trigger.webhook) return `webhook ${trigger.webhook}${trigger.secret_env ? " (signed)" : ""}`;
  return "trigger";
}

export function WorkflowsPage() {
  const found = useLoad(() => unwrap(api.GET("/api/v1/workflows")), "workflows", 5000);
  const workflows = found.data?.workflows ?? [];
  return (
    <main className="page">
      <h1>Workflows</h1>
      <ErrorNote error={found.error} />
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Workflow</th>
            <th scope="col">Version</th>
            <th scope="col">Deployed</th>
            <th scope="col">Triggers</th>
            <th scope="col">Runs</th>
          </tr>
        </thead>
        <tbody>
          {workflows.map((w) => (
            <tr key={w.id}>
              <td>
                <Link href={`/workflows/${encodeURIComponent(w.id)}`}>{w.name ?? w.id}</Link>
                {w.name ? <span className="muted mono"> {w.id}</span> : null}
                {w.description ? <div className="muted">{w.description}</div> : null}
              </td>
              <td>v{w.version}</td>
              <td>{formatTime(w.created_at)}</td>
              <td>{w.triggers?.length ? w.triggers.map(triggerText).join("; ") : <span className="muted">none</span>}</td>
              <td>
                <Link href={`/runs?workflow=${encodeURIComponent(w.id)}`}>history</Link>
              </td>
            </tr>
          ))}
          {!workflows.length && !found.loading ? (
            <tr>
              <td colSpan={5} className="muted">
                Nothing is deployed: <code>polyhost serve --workflows DIR</code> or <code>PUT /api/v1/workflows/ID</code>.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
    </main>
  );
}
