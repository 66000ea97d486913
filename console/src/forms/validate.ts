// JSON Schema validation in the browser, with an interpreter (@cfworker/json-schema) rather
// than a validator that compiles schemas to code: nothing from the server is ever evaluated.
import { Validator } from "@cfworker/json-schema";
import type { JsonSchema } from "../api/types";

export interface FieldError {
  /** The property the error is about ("" for the whole object). */
  field: string;
  message: string;
}

export function validate(schema: JsonSchema, value: unknown): FieldError[] {
  const draft = typeof schema.$schema === "string" && schema.$schema.includes("draft-07") ? "7" : "2020-12";
  const result = new Validator(schema, draft, false).validate(value);
  if (result.valid) return [];
  const errors: FieldError[] = [];
  const seen = new Set<string>();
  for (const error of result.errors) {
    // The summary errors of a combinator ("properties", "allOf") repeat their details.
    if (["properties", "allOf", "$ref", "items"].includes(error.keyword)) continue;
    let field = error.instanceLocation.replace(/^#\/?/, "").split("/")[0] ?? "";
    if (error.keyword === "required") {
      const match = /"([^"]+)"/.exec(error.error);
      field = match?.[1] ?? field;
    }
    const message = error.keyword === "required" ? "required" : error.error;
    const key = `${field}:${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    errors.push({ field: decodeURIComponent(field), message });
  }
  return errors;
}
