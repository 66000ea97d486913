import { useState } from "react";
import { formatTime } from "../format";
import { useRunStore, useRunVersion } from "./context";

const RECENT = 500;

/** Every event with its sequence number; the latest 500 unless asked for all. */
export function EventLog() {
  const store = useRunStore();
  useRunVersion();
  const [all, setAll] = useState(false);
  const events = store.events;
  const shown = all ? events : events.slice(-RECENT);
  return (
    <div className="event-log">
      {events.length > RECENT && !all ? (
        <button type="button" onClick={() => setAll(true)}>
          Show all {events.length} events
        </button>
      ) : null}
      <table className="table compact" aria-label="Events">
        <thead>
          <tr>
            <th scope="col">seq</th>
            <th scope="col">time</th>
            <th scope="col">type</th>
            <th scope="col">node</th>
            <th scope="col">data</th>
          </tr>
        </thead>
        <tbody>
          {shown.map((event) => (
            <tr key={event.seq} data-seq={event.seq}>
              <td className="mono">{event.seq}</td>
              <td>{formatTime(event.ts)}</td>
              <td>{event.type}</td>
              <td>
                {event.node ? (
                  <button type="button" className="link mono" onClick={() => store.select(event.node ?? null)}>
                    {event.node}
                  </button>
                ) : null}
              </td>
              <td className="mono data">{Object.keys(event.data ?? {}).length ? JSON.stringify(event.data) : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
