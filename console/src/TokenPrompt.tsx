import { type SyntheticEvent, useEffect, useRef, useState } from "react";
import { forgetToken, readToken, saveToken } from "./api/token";

/** Asks for the API token once the server answers 401; keeps it in session storage. */
export function TokenPrompt({ onDone }: { onDone: (changed: boolean) => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [value, setValue] = useState("");
  useEffect(() => {
    dialog.current?.showModal();
  }, []);
  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    if (!value.trim()) return;
    saveToken(value);
    onDone(true);
  };
  return (
    <dialog ref={dialog} className="dialog" aria-labelledby="token-title" onCancel={() => onDone(false)}>
      <form onSubmit={submit}>
        <h2 id="token-title">API token</h2>
        <p>
          This server needs a bearer token. It is kept in this tab only (session storage){readToken() ? "; the one kept was refused" : ""}.
        </p>
        <label htmlFor="token-input">Token</label>
        <input id="token-input" type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} autoFocus />
        <div className="form-actions">
          <button type="submit" className="primary">
            Use token
          </button>
          <button
            type="button"
            onClick={() => {
              forgetToken();
              onDone(true);
            }}
          >
            Forget token
          </button>
          <button type="button" onClick={() => onDone(false)}>
            Close
          </button>
        </div>
      </form>
    </dialog>
  );
}
