"""`mcpmesh`: the command line of the REST edge (workflows, tools, MCP servers, agents, keys, health, metrics, analyze)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from clients import analyze, resources
from clients.rest import CLIENT_VERSION
from clients.session import EXIT_FAILED, Session, session, short
from clients.settings import Settings, config_path, resolve, save

app = typer.Typer(
    name="mcpmesh", help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(resources.workflows, name="workflows")
app.add_typer(resources.tools, name="tools")
app.add_typer(resources.mcp_servers, name="mcp-servers")
app.add_typer(resources.agents, name="agents")
app.add_typer(resources.keys, name="keys")
app.command(name="analyze")(analyze.analyze)

Json = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]


def _version(value: bool) -> None:
    if value:
        print(f"mcpmesh {CLIENT_VERSION}")
        raise typer.Exit()


@app.callback()
def connect(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(help="edge URL [env MCPMESH_URL; default https://127.0.0.1:8443]")] = None,
    api_key: Annotated[str | None, typer.Option(help="API key [env MCP_API_KEY; or `mcpmesh login`]")] = None,
    ca_cert: Annotated[str | None, typer.Option(help="CA bundle that signed the edge's certificate [env MCPMESH_CA_CERT]")] = None,
    config: Annotated[Path | None, typer.Option(help="CLI config file [env MCPMESH_CONFIG]")] = None,
    as_json: Json = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version")] = False,
) -> None:
    """Talks REST to the mcpmesh edge; `mcpmesh login` saves the URL and key."""
    ctx.obj = Session(resolve(url, api_key, ca_cert, config), as_json=as_json)
    ctx.meta["config"] = config


@app.command()
def login(
    ctx: typer.Context,
    as_json: Json = False,
) -> None:
    """Checks the key against the edge and saves URL, key and CA to the config file (mode 0600)."""
    state = session(ctx, as_json)
    if not state.settings.api_key:
        key = typer.prompt("API key", hide_input=True)
        state.settings = Settings(state.settings.url, key.strip(), state.settings.ca_cert)
    with state.client() as client:
        me = client.whoami()
    verify = state.settings.verify()
    if isinstance(verify, str):  # keep the CA that worked by its full path, so the CLI works from any folder
        state.settings = Settings(state.settings.url, state.settings.api_key, verify)
    path = save(state.settings, ctx.meta.get("config") or config_path())
    state.emit({"url": state.settings.url, "config": str(path), **me}, lambda out: out.print(
        f"logged in to {state.settings.url} as {me.get('displayName') or me.get('principal')} "
        f"({short(me.get('role', ''), 'ROLE_')}); saved to {path}", highlight=False))


def _health_table(health: dict[str, Any]) -> Table:
    table = Table("service", "status", "instances", title=f"system {short(health.get('status', ''), 'HEALTH_STATUS_')}")
    for service in health.get("services", []):
        instances = ", ".join(
            f"{i.get('address', '?')} {i.get('meshStatus', '')} {short((i.get('report') or {}).get('status', ''), 'HEALTH_STATUS_')}".strip()
            for i in service.get("instances", []))
        table.add_row(service.get("service", "?"), short(service.get("status", ""), "HEALTH_STATUS_"), instances)
    return table


@app.command()
def health(ctx: typer.Context, as_json: Json = False) -> None:
    """Health of every service and instance; exits 1 unless all are serving."""
    state = session(ctx, as_json)
    with state.client() as client:
        report = client.system_health()
    state.emit(report, lambda out: out.print(_health_table(report)))
    if short(report.get("status", ""), "HEALTH_STATUS_") != "serving":
        raise typer.Exit(EXIT_FAILED)


@app.command()
def metrics(ctx: typer.Context, as_json: Json = False) -> None:
    """System metrics, including the scaling metrics (ActiveWorkflows, ...)."""
    state = session(ctx, as_json)
    with state.client() as client:
        report = client.system_metrics()

    def render(out: Any) -> None:
        table = Table("service", "metric", "value")
        for metric in report.get("metrics", []):
            value = float(metric.get("value", 0))
            table.add_row(metric.get("service", ""), metric.get("name", ""), f"{value:g}")
        out.print(table)

    state.emit(report, render)


def main() -> None:
    app(prog_name="mcpmesh")


if __name__ == "__main__":
    main()
