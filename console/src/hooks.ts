import { useCallback, useEffect, useRef, useState } from "react";

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

interface Answer<T> {
  key: string;
  data: T | undefined;
  error: unknown;
}

/** Runs ``load`` when ``key`` changes (and every ``everyMs`` when given); keeps the last data
 * while the next answer is on its way. */
export function useLoad<T>(load: () => Promise<T>, key: string, everyMs?: number): Loaded<T> {
  const [answer, setAnswer] = useState<Answer<T>>({ key: "", data: undefined, error: null });
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  useEffect(() => {
    loadRef.current = load;
  });

  useEffect(() => {
    let live = true;
    loadRef.current().then(
      (data) => {
        if (live) setAnswer({ key, data, error: null });
      },
      (error: unknown) => {
        if (live) setAnswer((old) => ({ key, data: old.data, error }));
      },
    );
    return () => {
      live = false;
    };
  }, [key, tick]);

  useEffect(() => {
    if (!everyMs) return;
    const timer = setInterval(() => {
      if (!document.hidden) setTick((t) => t + 1);
    }, everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data: answer.data, error: answer.error, loading: answer.key !== key, reload };
}
