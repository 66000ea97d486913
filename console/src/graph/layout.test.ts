import { describe, expect, it } from "vitest";
import type { WorkflowDocument } from "../api/types";
import { type Box, layout } from "./layout";
import { graphOf, pathOf, splitPath } from "./model";

function overlaps(a: Box, b: Box): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

const demo: WorkflowDocument = {
  nodes: [
    { id: "prepare", type: "core.transform" },
    {
      id: "each",
      type: "core.loop",
      body: {
        nodes: [
          { id: "tick", type: "core.wait" },
          { id: "say", type: "core.log" },
        ],
        edges: [{ from: "tick", to: "say" }],
      },
    },
    { id: "boom", type: "core.fail" },
    { id: "recover", type: "core.log" },
  ],
  edges: [
    { from: "prepare", to: "each" },
    { from: "each", to: "boom" },
    { from: "boom", to: "recover", port: "error" },
  ],
};

describe("graphOf", () => {
  it("keys body nodes under their group and keeps edge ports", () => {
    const graph = graphOf(demo);
    expect(graph.nodes.map((n) => n.key)).toEqual([
      "prepare",
      "each",
      "each.tick",
      "each.say",
      "boom",
      "recover",
    ]);
    expect(graph.byKey.get("each")?.group).toBe("loop");
    expect(graph.byKey.get("each.say")?.parent).toBe("each");
    expect(graph.edges.find((e) => e.target === "recover")?.port).toBe("error");
  });

  it("maps event paths to template keys and back", () => {
    expect(splitPath("outer[1].inner[12].x")).toEqual({ key: "outer.inner.x", iterations: [1, 12] });
    expect(pathOf("outer.inner.x", (g) => (g === "outer" ? 1 : 12))).toBe("outer[1].inner[12].x");
    expect(pathOf("prepare", () => 3)).toBe("prepare");
  });
});

describe("layout", () => {
  it("puts every node right of its predecessors, without overlaps", () => {
    const graph = graphOf(demo);
    const { boxes } = layout(graph);
    const box = (key: string) => boxes.get(key) as Box;
    for (const edge of graph.edges) {
      expect(box(edge.source).x + box(edge.source).width).toBeLessThan(box(edge.target).x);
    }
    const top = graph.nodes.filter((n) => n.parent === null).map((n) => box(n.key));
    for (const [i, a] of top.entries()) for (const b of top.slice(i + 1)) expect(overlaps(a, b)).toBe(false);
  });

  it("sizes a group to hold its body", () => {
    const { boxes } = layout(graphOf(demo));
    const group = boxes.get("each") as Box;
    for (const key of ["each.tick", "each.say"]) {
      const inner = boxes.get(key) as Box;
      expect(inner.x).toBeGreaterThanOrEqual(0);
      expect(inner.y).toBeGreaterThanOrEqual(0);
      expect(inner.x + inner.width).toBeLessThanOrEqual(group.width);
      expect(inner.y + inner.height).toBeLessThanOrEqual(group.height);
    }
  });

  it("lays out 2,000 nodes with no two in the same place", () => {
    const nodes = Array.from({ length: 2000 }, (_, i) => ({ id: `n${i}`, type: "core.transform" }));
    const edges = nodes.slice(50).map((n, i) => ({ from: `n${i - (i % 50)}`, to: n.id }));
    const { boxes } = layout(graphOf({ nodes, edges }));
    const seen = new Set([...boxes.values()].map((b) => `${b.x},${b.y}`));
    expect(seen.size).toBe(2000);
  });
});
