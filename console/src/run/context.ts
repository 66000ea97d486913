import { createContext, useContext, useSyncExternalStore } from "react";
import { pathOf } from "../graph/model";
import { type NodeState, PENDING, type RunStore } from "./store";

export const RunContext = createContext<RunStore | null>(null);

export function useRunStore(): RunStore {
  const store = useContext(RunContext);
  if (!store) throw new Error("useRunStore outside a run view");
  return store;
}

/** The state of template node ``key`` in the iterations shown; re-renders when it changes. */
export function useNodeView(key: string): { path: string; state: NodeState; selected: boolean } {
  const store = useRunStore();
  const path = useSyncExternalStore(store.subscribe, () => pathOf(key, store.iterationOf));
  const state = useSyncExternalStore(store.subscribe, () => store.nodes.get(path) ?? PENDING);
  const selected = useSyncExternalStore(store.subscribe, () => store.selected === path);
  return { path, state, selected };
}

/** Re-renders on every applied batch of events (views that show everything: timeline, log). */
export function useRunVersion(): number {
  const store = useRunStore();
  return useSyncExternalStore(store.subscribe, store.getVersion);
}
