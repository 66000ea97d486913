// The run's result as the run page keeps it: read again without piling up requests, and the
// tokens the run used as its header shows them.
import type { Usage } from "./reply";

/** How long `soon()` gathers requests into one read. */
export const SOON_MS = 250;

export interface Timers {
  set: (run: () => void, ms: number) => ReturnType<typeof setTimeout>;
  clear: (handle: ReturnType<typeof setTimeout>) => void;
}

const TIMERS: Timers = {
  set: (run, ms) => setTimeout(run, ms),
  clear: (handle) => {
    clearTimeout(handle);
  },
};

/**
 * Reads the result again on request, with at most one read in flight: a request made while a
 * read is on its way becomes one more read after it (so the newest state always lands last),
 * and `soon()` waits a moment first, so a burst of requests costs a single read.
 */
export class ResultReader {
  private reading = false;
  private again = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly read: () => Promise<void>;
  private readonly delayMs: number;
  private readonly timers: Timers;

  constructor(read: () => Promise<void>, delayMs = SOON_MS, timers: Timers = TIMERS) {
    this.read = read;
    this.delayMs = delayMs;
    this.timers = timers;
  }

  /** Read as soon as no other read is in flight. */
  now = (): void => {
    this.clearTimer();
    if (this.reading) this.again = true;
    else this.start();
  };

  /** Read within a moment; requests until then share that read. */
  soon = (): void => {
    if (this.timer !== null || this.again) return;
    this.timer = this.timers.set(() => {
      this.timer = null;
      this.now();
    }, this.delayMs);
  };

  /** Drop the reads that wait (one in flight still lands). */
  cancel = (): void => {
    this.clearTimer();
    this.again = false;
  };

  private start(): void {
    this.reading = true;
    const done = () => {
      this.reading = false;
      if (this.again) {
        this.again = false;
        this.start();
      }
    };
    this.read().then(done, done);
  }

  private clearTimer(): void {
    if (this.timer === null) return;
    this.timers.clear(this.timer);
    this.timer = null;
  }
}

/** "1,234 (1,200 prompt + 34 completion)", as `polyhost runs show` prints a run's tokens. */
export function formatRunUsage(usage: Usage): string {
  const count = (n: number) => n.toLocaleString("en-US");
  const text = `${count(usage.total)} (${count(usage.prompt)} prompt + ${count(usage.completion)} completion)`;
  return usage.estimated ? `${text}, estimated` : text;
}
