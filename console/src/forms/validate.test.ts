import { describe, expect, it } from "vitest";
import { validate } from "./validate";

const schema = {
  type: "object",
  properties: { approved: { type: "boolean" }, note: { type: "string", minLength: 2 } },
  required: ["approved"],
};

describe("validate", () => {
  it("names the field of each problem", () => {
    const errors = validate(schema, { note: "x" });
    expect(errors.map((e) => e.field).sort()).toEqual(["approved", "note"]);
  });

  it("accepts a valid value", () => {
    expect(validate(schema, { approved: true, note: "ok" })).toEqual([]);
  });
});
