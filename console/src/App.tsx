import { lazy, Suspense, useEffect, useState } from "react";
import { onUnauthorized } from "./api/errors";
import { TokenPrompt } from "./TokenPrompt";
import { Link, useLocation } from "./router";
import { RunsPage } from "./runs/RunsPage";
import { NodesPage } from "./workflows/NodesPage";
import { WorkflowPage } from "./workflows/WorkflowPage";
import { WorkflowsPage } from "./workflows/WorkflowsPage";

// The run view carries the graph library: loaded when a run is opened, not with the list.
const RunPage = lazy(() => import("./run/RunPage"));

function Page({ url }: { url: URL }) {
  const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "runs" && parts[1]) return <RunPage key={parts[1]} runId={parts[1]} />;
  if (parts[0] === "workflows" && parts[1]) return <WorkflowPage workflowId={parts[1]} />;
  if (parts[0] === "workflows") return <WorkflowsPage />;
  if (parts[0] === "nodes") return <NodesPage />;
  if (!parts.length || parts[0] === "runs") return <RunsPage search={url.searchParams} />;
  return (
    <main className="page">
      <h1>Not found</h1>
      <p>
        No page at <code>{url.pathname}</code>. <Link href="/runs">Runs</Link>
      </p>
    </main>
  );
}

export function App() {
  const url = useLocation();
  const [asking, setAsking] = useState(false);
  // A new token remounts the page, so everything it shows is read again with it.
  const [generation, setGeneration] = useState(0);
  useEffect(() => onUnauthorized(() => setAsking(true)), []);
  const section = url.pathname.split("/")[1] ?? "";
  const tab = (href: string, label: string, active: boolean) => (
    <Link href={href} aria-current={active ? "page" : undefined}>
      {label}
    </Link>
  );
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link href="/runs" className="brand">
          polyhost
        </Link>
        <nav aria-label="Sections">
          {tab("/runs", "Runs", section === "" || section === "runs")}
          {tab("/workflows", "Workflows", section === "workflows")}
          {tab("/nodes", "Node types", section === "nodes")}
        </nav>
        <button type="button" className="link" onClick={() => setAsking(true)}>
          Token
        </button>
      </header>
      <div id="main" key={generation}>
        <Suspense fallback={<p className="page muted">Loading…</p>}>
          <Page url={url} />
        </Suspense>
      </div>
      {asking ? (
        <TokenPrompt
          onDone={(changed) => {
            setAsking(false);
            if (changed) setGeneration((g) => g + 1);
          }}
        />
      ) : null}
    </div>
  );
}
