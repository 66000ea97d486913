import { createHash, timingSafeEqual } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";

/**
 * Checks `authorization: Bearer <token>` metadata against the expected token, in constant time
 * (both sides are hashed first, so neither the content nor the length leaks through timing).
 * An empty expected token means no token is required.
 */
export function hasValidToken(metadata: grpc.Metadata, expected: string): boolean {
  if (expected === "") return true;
  const values = metadata.get("authorization");
  let ok = false;
  for (const value of values) {
    const text = typeof value === "string" ? value : value.toString("utf8");
    const match = /^Bearer\s+(.+)$/i.exec(text.trim());
    const given = match?.[1] ?? "";
    // Evaluate every value: no early exit that would depend on the content.
    ok = safeEqual(given, expected) || ok;
  }
  return ok;
}

function safeEqual(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a, "utf8").digest();
  const hb = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(ha, hb);
}
