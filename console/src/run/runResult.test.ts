import { describe, expect, it } from "vitest";
import { formatRunUsage, ResultReader, type Timers } from "./runResult";

/** Reads that answer when the test says so, and timers that fire when the test says so. */
function harness() {
  const answers: (() => void)[] = [];
  const due = new Map<number, () => void>();
  let next = 0;
  const timers: Timers = {
    set: (run) => {
      next += 1;
      due.set(next, run);
      return next as unknown as ReturnType<typeof setTimeout>;
    },
    clear: (handle) => {
      due.delete(handle as unknown as number);
    },
  };
  const reader = new ResultReader(
    () =>
      new Promise<void>((resolve) => {
        answers.push(resolve);
      }),
    250,
    timers,
  );
  const fireTimers = () => {
    const runs = [...due.values()];
    due.clear();
    for (const run of runs) run();
  };
  // Answer the oldest read and let its continuation run.
  const answer = async () => {
    answers.shift()?.();
    await Promise.resolve();
    await Promise.resolve();
  };
  return { reader, answers, due, fireTimers, answer };
}

describe("ResultReader", () => {
  it("keeps one read in flight and folds the requests made meanwhile into one more", async () => {
    const { reader, answers, answer } = harness();
    reader.now();
    reader.now();
    reader.now();
    expect(answers).toHaveLength(1);
    await answer();
    // The requests made during the first read: a single read after it.
    expect(answers).toHaveLength(1);
    await answer();
    expect(answers).toHaveLength(0);
  });

  it("gathers a burst of soon() into one read after the delay", async () => {
    const { reader, answers, due, fireTimers, answer } = harness();
    for (let i = 0; i < 50; i++) reader.soon();
    expect(answers).toHaveLength(0);
    expect(due.size).toBe(1);
    fireTimers();
    expect(answers).toHaveLength(1);
    await answer();
    expect(answers).toHaveLength(0);
  });

  it("reads after a read in flight when the node completed during it", async () => {
    const { reader, answers, fireTimers, answer } = harness();
    reader.now();
    reader.soon();
    fireTimers();
    // Still one read on its way; the second waits for it.
    expect(answers).toHaveLength(1);
    await answer();
    expect(answers).toHaveLength(1);
  });

  it("lets now() take the place of a waiting soon()", () => {
    const { reader, answers, due } = harness();
    reader.soon();
    reader.now();
    expect(due.size).toBe(0);
    expect(answers).toHaveLength(1);
  });

  it("drops waiting reads when cancelled and reads again when asked", async () => {
    const { reader, answers, due, answer } = harness();
    reader.now();
    reader.now();
    reader.soon();
    reader.cancel();
    expect(due.size).toBe(0);
    await answer();
    expect(answers).toHaveLength(0);
    reader.now();
    expect(answers).toHaveLength(1);
  });

  it("keeps reading after a read that failed", async () => {
    let calls = 0;
    const reader = new ResultReader(() => {
      calls += 1;
      return Promise.reject(new Error("offline"));
    });
    reader.now();
    await Promise.resolve();
    await Promise.resolve();
    reader.now();
    expect(calls).toBe(2);
  });
});

describe("formatRunUsage", () => {
  it("writes the run's tokens as `polyhost runs show` does", () => {
    expect(formatRunUsage({ prompt: 1200, completion: 34, total: 1234, estimated: false })).toBe(
      "1,234 (1,200 prompt + 34 completion)",
    );
    expect(formatRunUsage({ prompt: 7, completion: 5, total: 12, estimated: true })).toBe(
      "12 (7 prompt + 5 completion), estimated",
    );
  });
});
