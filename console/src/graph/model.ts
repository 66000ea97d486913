// A workflow document as the graph the run view draws: every node (body nodes of loops and
// parallels inside their group), keyed by its template path ("each.tick" for the node "tick"
// of the body of "each"), and the edges between nodes of one level.
import type { DocumentEdge, DocumentNode, WorkflowDocument } from "../api/types";

export interface GraphNode {
  key: string;
  id: string;
  type: string;
  parent: string | null;
  /** A loop or parallel node whose body is drawn inside it. */
  group: "loop" | "parallel" | null;
  doc: DocumentNode;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  port: string;
}

export interface WorkflowGraph {
  nodes: GraphNode[];
  edges: GraphEdge[];
  byKey: Map<string, GraphNode>;
}

const GROUP_TYPES: Record<string, "loop" | "parallel"> = {
  "core.loop": "loop",
  "core.parallel": "parallel",
};

export function graphOf(document: WorkflowDocument): WorkflowGraph {
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const addLevel = (
    level: DocumentNode[] | undefined,
    levelEdges: DocumentEdge[] | undefined,
    parent: string | null,
  ): void => {
    const prefix = parent === null ? "" : `${parent}.`;
    for (const doc of level ?? []) {
      const key = `${prefix}${doc.id}`;
      const group = doc.body ? (GROUP_TYPES[doc.type] ?? "loop") : null;
      nodes.push({ key, id: doc.id, type: doc.type, parent, group, doc });
      if (doc.body) addLevel(doc.body.nodes, doc.body.edges, key);
    }
    for (const edge of levelEdges ?? []) {
      const port = edge.port ?? "out";
      const source = `${prefix}${edge.from}`;
      const target = `${prefix}${edge.to}`;
      edges.push({ id: `${source}:${port}->${target}`, source, target, port });
    }
  };
  addLevel(document.nodes, document.edges, null);
  return { nodes, edges, byKey: new Map(nodes.map((node) => [node.key, node])) };
}

/** A node path of the events ("each[2].tick") as its template key and its iterations. */
export function splitPath(path: string): { key: string; iterations: number[] } {
  const iterations: number[] = [];
  const key = path.replace(/\[(\d+)\]/g, (_, index: string) => {
    iterations.push(Number(index));
    return "";
  });
  return { key, iterations };
}

/** The event path of template ``key`` in the iterations chosen for its enclosing groups. */
export function pathOf(key: string, chosen: (group: string) => number | undefined): string {
  const parts = key.split(".");
  let path = "";
  let group = "";
  parts.forEach((part, index) => {
    group = group ? `${group}.${part}` : part;
    path = path ? `${path}.${part}` : part;
    if (index < parts.length - 1) {
      const iteration = chosen(group);
      path += `[${iteration ?? 0}]`;
    }
  });
  return path;
}
