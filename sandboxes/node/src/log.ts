/** Writes one line about the sidecar itself to stderr (the host captures stderr into its logs). */
export type Logger = (message: string) => void;

/** A logger whose lines start with `sidecar NAME: `. */
export function stderrLogger(name: string): Logger {
  const prefix = name === "" ? "sidecar: " : `sidecar ${name}: `;
  return (message: string) => {
    process.stderr.write(prefix + message.replace(/\n+$/, "") + "\n");
  };
}

/** The text of anything thrown: an Error's message (or its name), a string, or its JSON. */
export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message || error.name || String(error);
  if (typeof error === "string") return error;
  try {
    const json = JSON.stringify(error);
    if (json !== undefined) return json;
  } catch {
    // fall through
  }
  return String(error);
}

/** An error's stack when it has one, else its text. */
export function errorDetail(error: unknown): string {
  if (error instanceof Error && typeof error.stack === "string" && error.stack !== "") return error.stack;
  return errorText(error);
}
