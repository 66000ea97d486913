"""The ``polyhost`` command (spec section 5).

Exit statuses: 0 a run completed or paused (or a command succeeded); 1 a run failed or was
cancelled, a run id was not found, or anything else went wrong; 2 the workflow, the manifest or
the inputs are invalid. No traceback reaches the user unless ``POLYHOST_DEBUG=1``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from ..events._capture import acquire
from ..events._result import RunStatus
from ..workflow._model import workflow_json_schema
from . import _commands, _remote
from ._guard import EXIT_OK, guarded
from ._render import catalog_table, print_json, stdout_console

__all__ = ["app", "main"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

app = typer.Typer(
    name="polyhost",
    help="Run workflows whose nodes are Python, Rust, WebAssembly or gRPC sidecars.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
runs_app = typer.Typer(
    help="The execution history: list, show, events; rerun, resume, retry, cancel.",
    no_args_is_help=True,
)
app.add_typer(runs_app, name="runs")

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="Run store: a SQLite path or sqlite:///PATH (default: $POLYHOST_HOME/polyhost.db).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
NodesOption = Annotated[
    Path | None,
    typer.Option(
        "--nodes",
        metavar="MANIFEST",
        help="A polyhost.toml declaring more node types (besides the one next to FILE).",
        show_default=False,
    ),
]
InputOption = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        metavar="KEY=VALUE",
        help="An input; VALUE is read as JSON when it parses, else as text. Repeatable.",
        show_default=False,
    ),
]
InputsFileOption = Annotated[
    Path | None,
    typer.Option(
        "--inputs",
        metavar="FILE.json",
        help="A JSON object of inputs; --input values override its keys.",
        show_default=False,
    ),
]


def _env_names(names: list[str] | None) -> list[str] | None:
    for name in names or []:
        if not _ENV_NAME.fullmatch(name):
            raise typer.BadParameter(f"{name!r} is not an environment variable name")
    return names


EnvOption = Annotated[
    list[str] | None,
    typer.Option(
        "--env",
        metavar="NAME",
        help="An environment variable workflows may read as env.NAME (its value is a secret, "
        "masked in all output, events and history). Repeatable.",
        show_default=False,
        callback=_env_names,
    ),
]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        metavar="URL",
        envvar=_remote.SERVER_ENV,
        help="Act on a polyhost server instead of the local store (its API token from "
        "$POLYHOST_API_TOKEN).",
        show_default=False,
    ),
]
FileArgument = Annotated[Path, typer.Argument(metavar="FILE", help="The workflow (YAML or JSON).")]
RunIdArgument = Annotated[str, typer.Argument(metavar="ID", help="A run id, or a unique prefix.")]


@app.command()
def run(
    file: FileArgument,
    *,
    input_: InputOption = None,
    inputs: InputsFileOption = None,
    nodes: NodesOption = None,
    env: EnvOption = None,
    json_: JsonOption = False,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """Run a workflow, with live progress on a terminal; a paused run exits 0.

    With --server, the server runs it (the document is read here and sent).
    """
    _remote.local_only(server, db=db, nodes=nodes, env=env)
    if server:
        guarded(
            lambda: _remote.run_workflow(
                file, input_ or [], inputs_file=inputs, as_json=json_, server=server
            ),
            json_errors=json_,
        )
    guarded(
        lambda: _commands.run_workflow(
            file, input_ or [], inputs_file=inputs, nodes=nodes, as_json=json_, db=db, env=env
        ),
        json_errors=json_,
    )


@app.command()
def deploy(
    file: FileArgument,
    *,
    workflow_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            metavar="ID",
            help="The deployed workflow's id (default: the document's id, else the file name).",
            show_default=False,
        ),
    ] = None,
    json_: JsonOption = False,
    server: Annotated[
        str,
        typer.Option(
            "--server",
            metavar="URL",
            envvar=_remote.SERVER_ENV,
            help="The polyhost server (its API token from $POLYHOST_API_TOKEN).",
        ),
    ],
) -> None:
    """Deploy a workflow to a server as the next version of its id (an unchanged document
    keeps its version)."""
    guarded(lambda: _remote.deploy(file, workflow_id, json_, server))


@app.command()
def compile(
    file: FileArgument,
    nodes: NodesOption = None,
    json_: JsonOption = False,
    db: DbOption = None,
) -> None:
    """Validate a workflow without running it; exit 2 when it has errors."""
    guarded(lambda: _commands.compile_workflow(file, nodes, json_))


@app.command("nodes")
def nodes_(
    json_: JsonOption = False,
    nodes: NodesOption = None,
    db: DbOption = None,
) -> None:
    """List the node types of the catalog with their runtimes."""

    def body() -> int:
        catalog = _commands.catalog(nodes)
        if json_:
            print_json([t.summary() for t in catalog])
        else:
            stdout_console().print(catalog_table(catalog))
        return EXIT_OK

    guarded(body)


@app.command()
def schema(db: DbOption = None) -> None:
    """Print the JSON Schema of the workflow document (for editors)."""

    def body() -> int:
        print_json(workflow_json_schema())
        return EXIT_OK

    guarded(body)


@runs_app.command("list")
def runs_list(
    *,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many runs.")] = 20,
    status: Annotated[
        RunStatus | None,
        typer.Option("--status", help="Only runs with this status.", show_default=False),
    ] = None,
    workflow: Annotated[
        str | None,
        typer.Option("--workflow", "-w", help="Only runs of this workflow id.", show_default=False),
    ] = None,
    json_: JsonOption = False,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """The most recent runs first."""
    _remote.local_only(server, db=db)
    if server:
        guarded(lambda: _remote.list_runs(limit, status, workflow, json_, server))
    guarded(lambda: _commands.list_runs(limit, status, workflow, json_, db))


@runs_app.command("show")
def runs_show(
    run_id: RunIdArgument,
    json_: JsonOption = False,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """A run's status, outputs, error and nodes (--json: the same object as run --json)."""
    _remote.local_only(server, db=db)
    if server:
        guarded(lambda: _remote.show_run(run_id, json_, server))
    guarded(lambda: _commands.show_run(run_id, json_, db))


@runs_app.command("rerun")
def runs_rerun(
    run_id: RunIdArgument,
    env: EnvOption = None,
    json_: JsonOption = False,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """Run a stored run again from the start: same document, same inputs, a new id."""
    _remote.local_only(server, db=db, env=env)
    if server:
        guarded(lambda: _remote.rerun(run_id, json_, server), json_errors=json_)
    guarded(lambda: _commands.rerun(run_id, json_, db, env), json_errors=json_)


@runs_app.command("resume")
def runs_resume(
    run_id: RunIdArgument,
    *,
    input_: InputOption = None,
    inputs: InputsFileOption = None,
    env: EnvOption = None,
    json_: JsonOption = False,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """Continue a paused run (--input: what it waits for), or one whose host died."""
    _remote.local_only(server, db=db, env=env)
    if server:
        guarded(
            lambda: _remote.resume(
                run_id, input_ or [], inputs_file=inputs, as_json=json_, server=server
            ),
            json_errors=json_,
        )
    guarded(
        lambda: _commands.resume(
            run_id, input_ or [], inputs_file=inputs, as_json=json_, db=db, env=env
        ),
        json_errors=json_,
    )


@runs_app.command("retry")
def runs_retry(
    run_id: RunIdArgument,
    env: EnvOption = None,
    json_: JsonOption = False,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """Continue a failed run from its failed nodes, keeping what completed."""
    _remote.local_only(server, db=db, env=env)
    if server:
        guarded(lambda: _remote.retry(run_id, json_, server), json_errors=json_)
    guarded(lambda: _commands.retry(run_id, json_, db, env), json_errors=json_)


@runs_app.command("cancel")
def runs_cancel(
    run_id: RunIdArgument,
    json_: JsonOption = False,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """Cancel a run, wherever it executes; a paused run is cancelled at once."""
    _remote.local_only(server, db=db)
    if server:
        guarded(lambda: _remote.cancel(run_id, json_, server))
    guarded(lambda: _commands.cancel(run_id, json_, db))


@app.command()
def serve(  # noqa: PLR0917 (typer reads options from the parameters)
    poll: Annotated[
        float, typer.Option("--poll", metavar="SECONDS", help="How often to look for work.")
    ] = 1.0,
    nodes: NodesOption = None,
    env: EnvOption = None,
    db: DbOption = None,
    address: Annotated[
        str,
        typer.Option(
            "--host",
            metavar="ADDRESS",
            help="Address to listen on; anything but loopback needs tokens.",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free).")
    ] = 8700,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            metavar="FILE",
            help="API tokens, one a line (also $POLYHOST_API_TOKENS, comma-separated).",
        ),
    ] = None,
    workflows: Annotated[
        Path | None,
        typer.Option(
            "--workflows", metavar="DIR", help="Deploy every workflow file in DIR at start."
        ),
    ] = None,
    heartbeat: Annotated[
        float,
        typer.Option(
            "--heartbeat",
            metavar="SECONDS",
            min=0.05,
            help="A comment on an idle event stream this often (keeps proxies from closing it).",
        ),
    ] = 15.0,
) -> None:
    """Serve the HTTP API, its event stream, schedules and webhooks; resume paused runs whose
    timer is due and take over runs whose host died.

    Ctrl-C or SIGTERM stops it: streams end (clients reconnect), runs it was executing are
    handed on to the next host.
    """
    guarded(
        lambda: _commands.serve(
            poll,
            nodes,
            db,
            env,
            address=address,
            port=port,
            token_file=token_file,
            workflows=workflows,
            heartbeat=heartbeat,
        )
    )


@runs_app.command("events")
def runs_events(
    run_id: RunIdArgument,
    json_: JsonOption = False,
    db: DbOption = None,
    server: ServerOption = None,
) -> None:
    """A run's event log, in order."""
    _remote.local_only(server, db=db)
    if server:
        guarded(lambda: _remote.show_events(run_id, json_, server))
    guarded(lambda: _commands.show_events(run_id, json_, db))


def main() -> None:
    """Entry point of the ``polyhost`` console script."""
    # Everything the command prints and logs passes the proxies that mask secrets; what nodes
    # print becomes their log events.
    acquire()
    app()
