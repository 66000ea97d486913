// polyhost wasm nodes in AssemblyScript: the reactor ABI (../../../ABI.md), a small JSON reader
// and writer, and the log and chunk imports.
//
// A node's entry file:
//
//   import { Ctx, JSONValue, Output, alloc, run } from "<this file>";
//
//   function greet(params: JSONValue, ctx: Ctx, out: Output): void {
//     const name = params.getString("name");
//     if (name === null) { out.fail("bad_params", "`name` must be a string"); return; }
//     out.setString("greeting", "Hello, " + name + "!");
//   }
//
//   export function polyhost_alloc(size: i32): i32 { return alloc(size); }
//   export function polyhost_run(ptr: i32, len: i32): i64 { return run(ptr, len, greet); }
//
// Build with `--runtime stub`: the host makes a fresh instance for every call, so nothing is
// worth collecting, and the stub allocator is the smallest and fastest.

// @ts-ignore: decorator
@external("polyhost", "log")
declare function hostLog(level: i32, ptr: usize, len: i32): void;

// @ts-ignore: decorator
@external("polyhost", "chunk")
declare function hostChunk(ptr: usize, len: i32): void;

export const DEBUG: i32 = 0;
export const INFO: i32 = 1;
export const WARNING: i32 = 2;
export const ERROR: i32 = 3;

/** Sends a log line to the host (0 debug, 1 info, 2 warning, 3 error). */
export function log(level: i32, message: string): void {
  const bytes = String.UTF8.encode(message);
  hostLog(level, changetype<usize>(bytes), bytes.byteLength);
}

/** Streams one chunk to the host: a JSON value, as text (see `quote` and `JSONValue`). */
export function chunk(json: string): void {
  const bytes = String.UTF8.encode(json);
  hostChunk(changetype<usize>(bytes), bytes.byteLength);
}

// ---- JSON values ---------------------------------------------------------------------------

export enum Kind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

/** A parsed JSON value. Objects keep their keys in order. */
export class JSONValue {
  kind: Kind = Kind.Null;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  items: JSONValue[] = [];
  keys: string[] = [];
  values: Map<string, JSONValue> = new Map<string, JSONValue>();

  /** The member `key` of an object, or null (also when this is not an object). */
  get(key: string): JSONValue | null {
    if (this.kind != Kind.Object || !this.values.has(key)) return null;
    return this.values.get(key);
  }

  /** The string member `key`, or null when absent or not a string. */
  getString(key: string): string | null {
    const value = this.get(key);
    if (value === null || value.kind != Kind.String) return null;
    return value.str;
  }

  /** The number member `key`, or `fallback` when absent or not a number. */
  getNumber(key: string, fallback: f64): f64 {
    const value = this.get(key);
    if (value === null || value.kind != Kind.Number) return fallback;
    return value.num;
  }

  /** This value written back as JSON text. */
  toJSON(): string {
    switch (this.kind) {
      case Kind.Null:
        return "null";
      case Kind.Bool:
        return this.bool ? "true" : "false";
      case Kind.Number:
        return formatNumber(this.num);
      case Kind.String:
        return quote(this.str);
      case Kind.Array: {
        const parts = new Array<string>(this.items.length);
        for (let i = 0; i < this.items.length; i++) parts[i] = this.items[i].toJSON();
        return "[" + parts.join(",") + "]";
      }
      default: {
        const parts = new Array<string>(this.keys.length);
        for (let i = 0; i < this.keys.length; i++) {
          parts[i] = quote(this.keys[i]) + ":" + this.values.get(this.keys[i]).toJSON();
        }
        return "{" + parts.join(",") + "}";
      }
    }
  }
}

const MAX_DEPTH = 256;

function hexDigit(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

class Parser {
  pos: i32 = 0;
  failed: bool = false;

  constructor(public text: string) {}

  fail(): JSONValue {
    this.failed = true;
    return new JSONValue();
  }

  skipSpace(): void {
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.pos++;
    }
  }

  peek(): i32 {
    return this.pos < this.text.length ? this.text.charCodeAt(this.pos) : -1;
  }

  value(depth: i32): JSONValue {
    if (depth > MAX_DEPTH) return this.fail();
    this.skipSpace();
    const c = this.peek();
    const v = new JSONValue();
    if (c == 0x22) {
      v.kind = Kind.String;
      v.str = this.string();
    } else if (c == 0x7b) {
      v.kind = Kind.Object;
      this.pos++;
      this.skipSpace();
      if (this.peek() == 0x7d) {
        this.pos++;
        return v;
      }
      while (!this.failed) {
        this.skipSpace();
        if (this.peek() != 0x22) return this.fail();
        const key = this.string();
        this.skipSpace();
        if (this.peek() != 0x3a) return this.fail();
        this.pos++;
        const member = this.value(depth + 1);
        if (!v.values.has(key)) v.keys.push(key);
        v.values.set(key, member);
        this.skipSpace();
        const next = this.peek();
        this.pos++;
        if (next == 0x7d) break;
        if (next != 0x2c) return this.fail();
      }
    } else if (c == 0x5b) {
      v.kind = Kind.Array;
      this.pos++;
      this.skipSpace();
      if (this.peek() == 0x5d) {
        this.pos++;
        return v;
      }
      while (!this.failed) {
        v.items.push(this.value(depth + 1));
        this.skipSpace();
        const next = this.peek();
        this.pos++;
        if (next == 0x5d) break;
        if (next != 0x2c) return this.fail();
      }
    } else if (this.literal("true")) {
      v.kind = Kind.Bool;
      v.bool = true;
    } else if (this.literal("false")) {
      v.kind = Kind.Bool;
    } else if (this.literal("null")) {
      v.kind = Kind.Null;
    } else {
      v.kind = Kind.Number;
      v.num = this.number();
    }
    return v;
  }

  literal(word: string): bool {
    if (this.text.substr(this.pos, word.length) != word) return false;
    this.pos += word.length;
    return true;
  }

  digits(): bool {
    const start = this.pos;
    while (this.peek() >= 0x30 && this.peek() <= 0x39) this.pos++;
    return this.pos > start;
  }

  number(): f64 {
    // The JSON grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    const start = this.pos;
    if (this.peek() == 0x2d) this.pos++;
    if (this.peek() == 0x30) this.pos++;
    else if (!this.digits()) this.failed = true;
    if (this.peek() == 0x2e) {
      this.pos++;
      if (!this.digits()) this.failed = true;
    }
    if (this.peek() == 0x65 || this.peek() == 0x45) {
      this.pos++;
      if (this.peek() == 0x2b || this.peek() == 0x2d) this.pos++;
      if (!this.digits()) this.failed = true;
    }
    return this.failed ? 0 : parseFloat(this.text.substring(start, this.pos));
  }

  string(): string {
    this.pos++; // the opening quote
    const parts: string[] = [];
    let start = this.pos;
    while (true) {
      const c = this.peek();
      if (c < 0x20) {
        this.fail(); // the end of the text, or a raw control character
        return "";
      }
      if (c == 0x22) break;
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      parts.push(this.text.substring(start, this.pos));
      const e = this.text.charCodeAt(this.pos + 1);
      this.pos += 2;
      if (e == 0x75) {
        // \uXXXX is one UTF-16 code unit, the unit AssemblyScript strings are made of,
        // so the two halves of a surrogate pair land side by side on their own.
        let code = 0;
        for (let i = 0; i < 4; i++) {
          const digit = hexDigit(this.peek());
          if (digit < 0) {
            this.fail();
            return "";
          }
          code = code * 16 + digit;
          this.pos++;
        }
        parts.push(String.fromCharCode(code));
      } else if (e == 0x6e) parts.push("\n");
      else if (e == 0x74) parts.push("\t");
      else if (e == 0x72) parts.push("\r");
      else if (e == 0x62) parts.push("\b");
      else if (e == 0x66) parts.push("\f");
      else if (e == 0x22 || e == 0x5c || e == 0x2f) parts.push(String.fromCharCode(e));
      else {
        this.fail();
        return "";
      }
      start = this.pos;
    }
    parts.push(this.text.substring(start, this.pos));
    this.pos++; // the closing quote
    return parts.join("");
  }
}

/** Parses JSON text; null if it is not valid JSON. */
export function parse(text: string): JSONValue | null {
  const parser = new Parser(text);
  const value = parser.value(0);
  parser.skipSpace();
  if (parser.failed || parser.pos != text.length) return null;
  return value;
}

// ---- writing JSON --------------------------------------------------------------------------

const HEX = "0123456789abcdef";

/** A JSON string literal. */
export function quote(text: string): string {
  const parts: string[] = ['"'];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let escape: string | null = null;
    if (c == 0x22) escape = '\\"';
    else if (c == 0x5c) escape = "\\\\";
    else if (c == 0x0a) escape = "\\n";
    else if (c == 0x0d) escape = "\\r";
    else if (c == 0x09) escape = "\\t";
    else if (c < 0x20) escape = "\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
    if (escape !== null) {
      parts.push(text.substring(start, i));
      parts.push(escape);
      start = i + 1;
    }
  }
  parts.push(text.substring(start));
  parts.push('"');
  return parts.join("");
}

/** A number as JSON: whole numbers without a fraction; NaN and infinities as null. */
export function formatNumber(value: f64): string {
  if (!isFinite(value)) return "null";
  if (value == Math.floor(value) && Math.abs(value) < 9007199254740992) {
    return i64(value).toString();
  }
  return value.toString();
}

/** The context of a call. */
export class Ctx {
  runId: string = "";
  nodeId: string = "";
  attempt: i64 = 1;
  idempotencyKey: string = "";
}

/** The node's output: fields of the `ok` object in order, or an error. */
export class Output {
  private fields: string[] = [];
  failed: bool = false;
  code: string = "";
  message: string = "";

  setString(key: string, value: string): void {
    this.fields.push(quote(key) + ":" + quote(value));
  }

  setNumber(key: string, value: f64): void {
    this.fields.push(quote(key) + ":" + formatNumber(value));
  }

  setBool(key: string, value: bool): void {
    this.fields.push(quote(key) + ":" + (value ? "true" : "false"));
  }

  setNull(key: string): void {
    this.fields.push(quote(key) + ":null");
  }

  /** A value that is already JSON text. */
  setRaw(key: string, json: string): void {
    this.fields.push(quote(key) + ":" + json);
  }

  /** Fails the call with a snake_case code and a message; fields already set are dropped. */
  fail(code: string, message: string): void {
    this.failed = true;
    this.code = code;
    this.message = message;
  }

  render(): string {
    if (this.failed) {
      return '{"error":{"code":' + quote(this.code) + ',"message":' + quote(this.message) + "}}";
    }
    return '{"ok":{' + this.fields.join(",") + "}}";
  }
}

export type Handler = (params: JSONValue, ctx: Ctx, out: Output) => void;

// ---- the ABI -------------------------------------------------------------------------------

/** `polyhost_alloc`: room for the input. Never freed: the instance lives for one call. */
export function alloc(size: i32): i32 {
  const bytes: i32 = size > 0 ? size : 1;
  return <i32>heap.alloc(<usize>bytes);
}

function readCtx(ctx: JSONValue | null): Ctx {
  const result = new Ctx();
  if (ctx === null) return result;
  const runId = ctx.getString("run_id");
  const nodeId = ctx.getString("node_id");
  const key = ctx.getString("idempotency_key");
  if (runId !== null) result.runId = runId;
  if (nodeId !== null) result.nodeId = nodeId;
  if (key !== null) result.idempotencyKey = key;
  result.attempt = i64(ctx.getNumber("attempt", 1));
  return result;
}

/** `polyhost_run`: parses the input at ptr, calls the handler, returns (out_ptr << 32) | out_len. */
export function run(ptr: i32, len: i32, handler: Handler): i64 {
  const out = new Output();
  const input = parse(String.UTF8.decodeUnsafe(usize(ptr), usize(len)));
  if (input === null || input.kind != Kind.Object) {
    out.fail("bad_input", "the input is not a JSON object");
  } else {
    let params = input.get("params");
    if (params === null || params.kind != Kind.Object) {
      params = new JSONValue();
      params.kind = Kind.Object;
    }
    handler(params, readCtx(input.get("ctx")), out);
  }
  const bytes = String.UTF8.encode(out.render());
  return (i64(changetype<usize>(bytes)) << 32) | i64(bytes.byteLength);
}

/** Reports an AssemblyScript abort (a failed assertion, an index out of range) through the log,
 * then traps. Selected with `--use abort=...` so the module needs no `env.abort` import. */
export function abortNode(
  message: string | null,
  fileName: string | null,
  line: u32,
  column: u32,
): void {
  const where = (fileName !== null ? fileName : "?") + ":" + line.toString() + ":" + column.toString();
  log(ERROR, (message !== null ? message : "abort") + " at " + where);
  unreachable();
}
