// wasm.greet: {name} -> {greeting: "Hello, <name>!"} (a reactor).
import { Ctx, DEBUG, JSONValue, Output, alloc, log, run } from "../../../sdk/assemblyscript/assembly/polyhost";

function greet(params: JSONValue, ctx: Ctx, out: Output): void {
  const name = params.getString("name");
  if (name === null) {
    out.fail("bad_params", "`name` must be a string");
    return;
  }
  log(DEBUG, "greeting " + name + " (attempt " + ctx.attempt.toString() + ")");
  out.setString("greeting", "Hello, " + name + "!");
}

export function polyhost_alloc(size: i32): i32 {
  return alloc(size);
}

export function polyhost_run(ptr: i32, len: i32): i64 {
  return run(ptr, len, greet);
}
