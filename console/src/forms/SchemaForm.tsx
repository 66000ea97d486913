// A form generated from a JSON Schema of type object: a field per property (text, number,
// checkbox, choice), JSON text for anything richer. The value is validated against the whole
// schema in the browser before it is sent; the server checks it again.
import { type SyntheticEvent, useId, useMemo, useState } from "react";
import type { JsonSchema } from "../api/types";
import { type FieldError, validate } from "./validate";

interface Props {
  schema: JsonSchema | null | undefined;
  initial?: Record<string, unknown>;
  submitLabel: string;
  busy?: boolean;
  onSubmit: (value: Record<string, unknown>) => void;
  onCancel?: () => void;
  label: string;
}

type Kind = "string" | "number" | "integer" | "boolean" | "enum" | "json";

interface Field {
  name: string;
  kind: Kind;
  schema: JsonSchema;
  required: boolean;
}

function fieldsOf(schema: JsonSchema | null | undefined): Field[] {
  const properties = (schema?.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set(Array.isArray(schema?.required) ? (schema.required as string[]) : []);
  return Object.entries(properties).map(([name, sub]) => ({
    name,
    kind: kindOf(sub),
    schema: sub,
    required: required.has(name),
  }));
}

function kindOf(schema: JsonSchema): Kind {
  if (Array.isArray(schema.enum) && schema.enum.every((v) => typeof v === "string")) return "enum";
  const type = schema.type;
  if (type === "string" || type === "number" || type === "integer" || type === "boolean") return type;
  return "json";
}

function textOf(field: Field, value: unknown): string {
  if (value === undefined) return "";
  if (field.kind === "json" || typeof value === "object") return JSON.stringify(value, null, 1);
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function SchemaForm({ schema, initial, submitLabel, busy, onSubmit, onCancel, label }: Props) {
  const fields = useMemo(() => fieldsOf(schema), [schema]);
  const start = useMemo(() => {
    const values: Record<string, string | boolean> = {};
    for (const field of fields) {
      const given = initial?.[field.name] ?? field.schema.default;
      values[field.name] = field.kind === "boolean" ? given === true : textOf(field, given);
    }
    return values;
  }, [fields, initial]);
  const [values, setValues] = useState(start);
  const [errors, setErrors] = useState<FieldError[]>([]);
  const [extra, setExtra] = useState(() => {
    const known = new Set(fields.map((f) => f.name));
    const rest = Object.fromEntries(Object.entries(initial ?? {}).filter(([k]) => !known.has(k)));
    return Object.keys(rest).length || !fields.length ? JSON.stringify(rest, null, 1) : "";
  });
  const formId = useId();

  const collect = (): { value: Record<string, unknown>; problems: FieldError[] } => {
    const value: Record<string, unknown> = {};
    const problems: FieldError[] = [];
    if (extra.trim()) {
      try {
        Object.assign(value, JSON.parse(extra));
      } catch {
        problems.push({ field: "", message: "the other values are not valid JSON" });
      }
    }
    for (const field of fields) {
      const raw = values[field.name];
      if (field.kind === "boolean") {
        value[field.name] = raw === true;
        continue;
      }
      const text = typeof raw === "string" ? raw : "";
      if (text === "") continue;
      if (field.kind === "number" || field.kind === "integer") {
        const number = Number(text);
        if (Number.isNaN(number)) problems.push({ field: field.name, message: "not a number" });
        else value[field.name] = number;
      } else if (field.kind === "json") {
        try {
          value[field.name] = JSON.parse(text);
        } catch {
          problems.push({ field: field.name, message: "not valid JSON" });
        }
      } else {
        value[field.name] = text;
      }
    }
    return { value, problems };
  };

  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    const { value, problems } = collect();
    const found = problems.length || !schema ? problems : validate(schema, value);
    setErrors(found);
    if (!found.length) onSubmit(value);
  };

  const errorFor = (name: string) => errors.filter((e) => e.field === name);
  const general = errors.filter((e) => !fields.some((f) => f.name === e.field));

  return (
    <form className="schema-form" onSubmit={submit} aria-label={label} noValidate>
      {fields.map((field) => {
        const id = `${formId}-${field.name}`;
        const problems = errorFor(field.name);
        const describedBy = problems.length ? `${id}-error` : undefined;
        const title = typeof field.schema.title === "string" ? field.schema.title : field.name;
        const help = typeof field.schema.description === "string" ? field.schema.description : null;
        const set = (v: string | boolean) => setValues((old) => ({ ...old, [field.name]: v }));
        const current = values[field.name];
        return (
          <div className={`field ${problems.length ? "invalid" : ""}`} key={field.name}>
            <label htmlFor={id}>
              {title}
              {field.required ? <span aria-hidden="true"> *</span> : null}
              <span className="muted"> {field.kind === "json" ? "JSON" : field.kind}</span>
            </label>
            {field.kind === "boolean" ? (
              <input id={id} type="checkbox" checked={current === true} onChange={(e) => set(e.target.checked)} aria-describedby={describedBy} />
            ) : field.kind === "enum" ? (
              <select id={id} value={String(current)} onChange={(e) => set(e.target.value)} aria-describedby={describedBy}>
                <option value="">—</option>
                {(field.schema.enum as string[]).map((option) => (
                  <option key={option}>{option}</option>
                ))}
              </select>
            ) : field.kind === "json" ? (
              <textarea id={id} rows={3} value={String(current)} onChange={(e) => set(e.target.value)} aria-describedby={describedBy} />
            ) : (
              <input
                id={id}
                type={field.kind === "string" ? "text" : "number"}
                step={field.kind === "integer" ? 1 : "any"}
                value={String(current)}
                onChange={(e) => set(e.target.value)}
                aria-invalid={problems.length > 0}
                aria-describedby={describedBy}
              />
            )}
            {help ? <small className="muted">{help}</small> : null}
            {problems.length ? (
              <small id={`${id}-error`} className="field-error" role="alert">
                {problems.map((p) => p.message).join("; ")}
              </small>
            ) : null}
          </div>
        );
      })}
      {extra !== "" || !fields.length ? (
        <div className="field">
          <label htmlFor={`${formId}-extra`}>{fields.length ? "Other values (JSON)" : "Values (JSON object)"}</label>
          <textarea id={`${formId}-extra`} rows={4} value={extra} onChange={(e) => setExtra(e.target.value)} />
        </div>
      ) : null}
      {general.length ? (
        <p className="field-error" role="alert">
          {general.map((p) => (p.field ? `${p.field}: ${p.message}` : p.message)).join("; ")}
        </p>
      ) : null}
      <div className="form-actions">
        <button type="submit" className="primary" disabled={busy}>
          {submitLabel}
        </button>
        {onCancel ? (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
      </div>
    </form>
  );
}
