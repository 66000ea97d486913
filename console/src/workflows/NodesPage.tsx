import { api, unwrap } from "../api/client";
import type { NodeType } from "../api/types";
import { ErrorNote } from "../components/common";
import { useLoad } from "../hooks";

export function NodesPage() {
  const found = useLoad(() => unwrap(api.GET("/api/v1/nodes")), "nodes");
  const byRuntime = new Map<string, NodeType[]>();
  for (const node of found.data ?? []) {
    const list = byRuntime.get(node.runtime) ?? [];
    list.push(node);
    byRuntime.set(node.runtime, list);
  }
  return (
    <main className="page">
      <h1>Node types</h1>
      <ErrorNote error={found.error} />
      {[...byRuntime.entries()].sort().map(([runtime, nodes]) => (
        <section key={runtime} className="section" aria-labelledby={`rt-${runtime}`}>
          <h2 id={`rt-${runtime}`}>
            {runtime} <span className="muted">({nodes.length})</span>
          </h2>
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Type</th>
                <th scope="col">Version</th>
                <th scope="col">Ports</th>
                <th scope="col">Description</th>
              </tr>
            </thead>
            <tbody>
              {nodes.map((node) => (
                <tr key={node.type}>
                  <td className="mono">{node.type}</td>
                  <td>{node.version}</td>
                  <td>{node.ports.join(", ")}</td>
                  <td>
                    {node.description}
                    {node.input_schema ? (
                      <details>
                        <summary>input schema</summary>
                        <pre className="json">{JSON.stringify(node.input_schema, null, 2)}</pre>
                      </details>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ))}
    </main>
  );
}
