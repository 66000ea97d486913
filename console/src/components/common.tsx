import type { ReactNode } from "react";
import { messageOf } from "../api/errors";
import { pretty } from "../format";

export function StatusBadge({ status }: { status: string }) {
  return (
    <span className={`badge status-${status}`} data-status={status}>
      {status}
    </span>
  );
}

export function Json({ value, label }: { value: unknown; label?: string }) {
  if (value === undefined || value === null) return <p className="muted">{label ? `${label}: ` : ""}none</p>;
  return (
    <pre className="json" tabIndex={0} aria-label={label}>
      {pretty(value)}
    </pre>
  );
}

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p className="error-note" role="alert">
      {messageOf(error)}
    </p>
  );
}

export function Section({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="section">
      <header className="section-head">
        <h2>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}
