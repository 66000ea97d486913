// The run's DAG: laid out once per document (layout.ts), drawn by xyflow. Node boxes read their
// own state from the run store, so an event re-renders the node it is about and nothing else.
import {
  Background,
  Controls,
  type Edge,
  Handle,
  type Node,
  type NodeProps,
  Position,
  ReactFlow,
  useReactFlow,
  useStore,
} from "@xyflow/react";
import "@xyflow/react/dist/base.css";
import { memo, useEffect, useMemo, useSyncExternalStore } from "react";
import { formatDuration } from "../format";
import type { Layout } from "../graph/layout";
import type { WorkflowGraph } from "../graph/model";
import { useNodeView, useRunStore } from "./context";

interface StepData extends Record<string, unknown> {
  key: string;
  label: string;
  type: string;
}

type StepNode = Node<StepData, "step">;
type GroupNode = Node<StepData & { kind: string }, "group">;

const StepBox = memo(function StepBox({ data }: NodeProps<StepNode>) {
  const store = useRunStore();
  const { path, state, selected } = useNodeView(data.key);
  const attempts = state.attempts.length;
  return (
    <>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <button
        type="button"
        className={`step status-${state.status}${selected ? " selected" : ""}`}
        data-key={data.key}
        data-path={path}
        data-status={state.status}
        aria-pressed={selected}
        aria-label={`${data.key}: ${state.status}`}
        title={`${path} (${data.type})`}
        onClick={() => store.select(path)}
      >
        <span className="step-dot" aria-hidden="true" />
        <span className="step-text">
          <span className="step-id">{data.label}</span>
          <span className="step-meta">
            {data.type}
            {attempts > 1 ? ` · ${attempts} attempts` : ""}
            {state.durationMs !== null ? ` · ${formatDuration(state.durationMs)}` : ""}
          </span>
        </span>
      </button>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </>
  );
});

const GroupBox = memo(function GroupBox({ data }: NodeProps<GroupNode>) {
  const store = useRunStore();
  const { path, state, selected } = useNodeView(data.key);
  const count = useSyncExternalStore(store.subscribe, () => store.iterationCount(data.key));
  const shown = useSyncExternalStore(store.subscribe, () => store.iterationOf(data.key));
  const following = useSyncExternalStore(store.subscribe, () => store.isFollowing(data.key));
  const noun = data.kind === "parallel" ? "branch" : "iteration";
  return (
    <div className={`group status-${state.status}${selected ? " selected" : ""}`} data-group={data.key} data-status={state.status}>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="group-head">
        <button
          type="button"
          className="group-title"
          aria-pressed={selected}
          aria-label={`${data.key}: ${state.status}`}
          data-key={data.key}
          data-status={state.status}
          onClick={() => store.select(path)}
        >
          <span className="step-dot" aria-hidden="true" />
          {data.label} <span className="muted">{data.type}</span>
        </button>
        <label className="group-pick">
          <span className="muted">
            {count} {count === 1 ? noun : (noun === "branch" ? "branches" : "iterations")}, showing
          </span>{" "}
          <select
            className="nodrag"
            aria-label={`${noun} of ${data.key} to show`}
            value={following ? "latest" : String(shown ?? 0)}
            onChange={(e) => store.choose(data.key, e.target.value === "latest" ? null : Number(e.target.value))}
          >
            <option value="latest">latest{shown !== undefined ? ` (#${shown})` : ""}</option>
            {Array.from({ length: Math.min(count, 5000) }, (_, i) => (
              <option key={i} value={i}>
                #{i}
              </option>
            ))}
          </select>
        </label>
      </div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
});

const nodeTypes = { step: StepBox, group: GroupBox };

/** Fits a small graph again when its frame changes size (the node panel opening or closing). */
function RefitOnResize() {
  const { fitView } = useReactFlow();
  const width = useStore((s) => s.width);
  const height = useStore((s) => s.height);
  useEffect(() => {
    if (width && height) void fitView({ maxZoom: 1, padding: 0.1 });
  }, [width, height, fitView]);
  return null;
}

export function Graph({ graph, layout }: { graph: WorkflowGraph; layout: Layout }) {
  const { nodes, edges } = useMemo(() => {
    const nodes: Node[] = graph.nodes.map((node) => {
      const box = layout.boxes.get(node.key) ?? { x: 0, y: 0, width: 0, height: 0 };
      const data = { key: node.key, label: node.doc.name ?? node.id, type: node.type };
      return {
        id: node.key,
        type: node.group ? "group" : "step",
        position: { x: box.x, y: box.y },
        width: box.width,
        height: box.height,
        // Not selectable in xyflow's sense, yet the buttons inside must take clicks.
        style: { width: box.width, height: box.height, pointerEvents: "all" as const },
        data: node.group ? { ...data, kind: node.group } : data,
        ...(node.parent ? { parentId: node.parent, extent: "parent" as const } : {}),
        draggable: false,
        selectable: false,
        focusable: false,
      };
    });
    const edges: Edge[] = graph.edges.map((edge) => ({
      id: edge.id,
      source: edge.source,
      target: edge.target,
      focusable: false,
      ...(edge.port !== "out" ? { label: edge.port } : {}),
      className: edge.port === "error" ? "edge-error" : undefined,
    }));
    return { nodes, edges };
  }, [graph, layout]);
  const large = nodes.length > 200;
  return (
    <div className="graph" aria-label="Workflow graph">
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable={false}
        nodesFocusable={false}
        edgesFocusable={false}
        // A large graph opens at a readable zoom on its start, drawing only what is on screen.
        onlyRenderVisibleElements={large}
        fitView={!large}
        fitViewOptions={{ maxZoom: 1, padding: 0.1 }}
        defaultViewport={{ x: 16, y: 16, zoom: 0.85 }}
        minZoom={0.02}
        colorMode="system"
      >
        <Background />
        <Controls showInteractive={false} />
        {large ? null : <RefitOnResize />}
      </ReactFlow>
    </div>
  );
}
