/**
 * Watches stdin for end-of-file: a host that manages the sidecar keeps a pipe open on our stdin,
 * and when that host dies (even by SIGKILL) the pipe closes. Calls `onParentGone` once.
 */
export function watchStdinForParent(onParentGone: () => void): void {
  let fired = false;
  const fire = (): void => {
    if (fired) return;
    fired = true;
    onParentGone();
  };
  const stdin = process.stdin;
  stdin.on("data", () => undefined);
  stdin.once("end", fire);
  stdin.once("close", fire);
  stdin.once("error", fire);
  stdin.resume();
}
