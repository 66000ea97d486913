// The reply a node streams (llm.chat): its text growing as it comes, the tools it called, and
// the tokens it used once done; below it the raw chunks, folded away when a reply says it all.
import { useLayoutEffect, useRef, useState } from "react";
import { Json } from "../components/common";
import { formatUsage, type Reply, type Usage } from "./reply";
import "./reply.css";

// Within this many pixels of the bottom, the text follows what streams in.
const FOLLOW_SLACK = 24;

export function ReplySection({ reply, usage, running }: { reply: Reply | null; usage: Usage | null; running: boolean }) {
  if (!reply && !usage) return null;
  return (
    <>
      <h3>
        Reply
        {reply && reply.step > 1 ? <span className="muted small-inline"> step {reply.step}</span> : null}
      </h3>
      {reply ? <ReplyText text={reply.text} running={running} /> : null}
      {reply?.tools.length ? (
        <ul className="tool-calls" aria-label="tool calls">
          {reply.tools.map((tool) => (
            <li key={`${tool.step}:${tool.id}`} data-status={tool.status}>
              <span className="mono">{tool.name}</span>{" "}
              <span className={`tool-status tool-${tool.status}`}>{tool.status}</span>
              <span className="muted"> step {tool.step}</span>
              {tool.error ? <span className="muted">: {tool.error}</span> : null}
            </li>
          ))}
        </ul>
      ) : null}
      {usage ? <p className="usage">{formatUsage(usage)}</p> : null}
    </>
  );
}

function ReplyText({ text, running }: { text: string; running: boolean }) {
  const box = useRef<HTMLPreElement>(null);
  const following = useRef(true);
  // Keep the newest words in sight unless the reader scrolled up to read earlier ones.
  useLayoutEffect(() => {
    const element = box.current;
    if (element && following.current) element.scrollTop = element.scrollHeight;
  }, [text]);
  const onScroll = () => {
    const element = box.current;
    if (element) following.current = element.scrollHeight - element.scrollTop - element.clientHeight < FOLLOW_SLACK;
  };
  return (
    <pre ref={box} className="reply" tabIndex={0} aria-label="reply" aria-busy={running} onScroll={onScroll}>
      {text || <span className="muted">{running ? "waiting for the first words…" : "no text"}</span>}
    </pre>
  );
}

export function StreamedChunks({ chunks, count, folded }: { chunks: unknown[]; count: number; folded: boolean }) {
  // null: as the node suggests (folded under a reply); then as the reader left it.
  const [chosen, setChosen] = useState<boolean | null>(null);
  const open = chosen ?? !folded;
  if (!count) {
    return (
      <>
        <h3>Streamed chunks</h3>
        <p className="muted">none</p>
      </>
    );
  }
  return (
    <details
      className="chunks"
      open={open}
      onToggle={(event) => {
        const now = event.currentTarget.open;
        if (now !== open) setChosen(now);
      }}
    >
      <summary>
        <h3>
          Streamed chunks <span className="muted">({count})</span>
        </h3>
      </summary>
      {count > chunks.length ? <p className="muted small">the latest {chunks.length} are kept here</p> : null}
      {/* Only an open list is rendered: a long stream would re-serialise it every frame. */}
      {open ? <Json value={chunks} label="chunks" /> : null}
    </details>
  );
}
