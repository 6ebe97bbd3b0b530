"""`mcpmesh workflows|tools|mcp-servers|agents|keys ...`: one sub-command per REST call of the edge."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from clients.events import format_event
from clients.rest import McpMeshClient
from clients.session import EXIT_ERROR, EXIT_FAILED, Session, session, short

Json = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
Params = Annotated[list[str] | None, typer.Option("--param", "--arg", "-p", metavar="NAME=VALUE", help="one argument; VALUE is JSON or text")]
ParamsJson = Annotated[str, typer.Option("--parameters", "--input", help="all arguments as one JSON object")]

workflows = typer.Typer(help="create, inspect, watch and cancel workflows", no_args_is_help=True)
tools = typer.Typer(help="list, describe, execute and approve tools", no_args_is_help=True)
mcp_servers = typer.Typer(help="register, list and remove external MCP servers (admin)", no_args_is_help=True)
agents = typer.Typer(help="list and run agents", no_args_is_help=True)
keys = typer.Typer(help="create, list and revoke API keys (admin)", no_args_is_help=True)

FINAL_STATES = {"succeeded", "failed", "cancelled"}


def arguments(state: Session, pairs: list[str] | None, raw: str) -> dict[str, Any]:
    """A JSON object from --parameters plus NAME=VALUE pairs (VALUE parsed as JSON when it is JSON)."""
    try:
        values = json.loads(raw) if raw else {}
    except ValueError as error:
        state.fail(f"--parameters is not JSON: {error}")
    if not isinstance(values, dict):
        state.fail("--parameters must be a JSON object, such as '{\"path\": \".\"}'")
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            state.fail(f"--param {pair!r}: expected NAME=VALUE")
        try:
            values[name] = json.loads(value)
        except ValueError:
            values[name] = value
    return values


def _workflow_table(workflow: dict[str, Any]) -> Table:
    table = Table("field", "value", show_header=False, title=f"workflow {workflow.get('id', '')}")
    table.add_row("type", workflow.get("type", ""))
    table.add_row("state", short(workflow.get("state", ""), "WORKFLOW_STATE_"))
    table.add_row("progress", f"{workflow.get('progressPercent', 0)}%")
    for step in workflow.get("steps", []):
        table.add_row(f"step {step.get('name', '')}", short(step.get("state", ""), "WORKFLOW_STATE_") + (f": {step['error']}" if step.get("error") else ""))
    if workflow.get("result", {}).get("summary"):
        table.add_row("summary", workflow["result"]["summary"])
    if workflow.get("error", {}).get("message"):
        table.add_row("error", workflow["error"]["message"])
    table.add_row("created", workflow.get("createTime", ""))
    return table


def follow(state: Session, client: McpMeshClient, workflow_id: str, after: int = 0) -> dict[str, Any]:
    """Prints each event to stderr until the final one; returns the finished workflow."""
    for event in client.watch_workflow(workflow_id, after):
        if not state.as_json:
            print(format_event(event), file=sys.stderr)
    return client.get_workflow(workflow_id)


def finish(state: Session, workflow: dict[str, Any]) -> None:
    """The outcome of a followed workflow: summary or error, exit 1 unless it succeeded."""
    outcome = short(workflow.get("state", ""), "WORKFLOW_STATE_")
    if state.as_json:
        print(json.dumps(workflow, indent=2))
    elif outcome == "succeeded":
        print(workflow.get("result", {}).get("summary", "workflow succeeded"))
    if outcome != "succeeded":
        print(f"error: workflow {workflow.get('id')} {outcome}: {workflow.get('error', {}).get('message', '')}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED)


@workflows.command("create")
def create_workflow(
    ctx: typer.Context,
    workflow_type: Annotated[str, typer.Argument(metavar="TYPE", help="workflow type (see `workflows types`)")] = "code_analysis",
    path: Annotated[Path | None, typer.Option(help="folder to work on (sets parameters.path)")] = None,
    param: Params = None,
    parameters: ParamsJson = "",
    request_id: Annotated[str, typer.Option(help="idempotency key: the same key returns the same workflow")] = "",
    watch: Annotated[bool, typer.Option(help="follow the workflow to its end")] = False,
    as_json: Json = False,
) -> None:
    """Creates a workflow and prints its id (or follows it with --watch)."""
    state = session(ctx, as_json)
    values = arguments(state, param, parameters)
    if path is not None:
        values["path"] = str(path.resolve())
    with state.client() as client:
        workflow = client.create_workflow(workflow_type, values, request_id)
        if watch:
            print(workflow["id"], file=sys.stderr if state.as_json else sys.stdout)
            workflow = follow(state, client, workflow["id"])
    if watch:
        finish(state, workflow)
        return
    state.emit(workflow, lambda out: print(workflow["id"]))


@workflows.command("get")
def get_workflow(ctx: typer.Context, workflow_id: Annotated[str, typer.Argument(metavar="ID")], as_json: Json = False) -> None:
    """Shows one workflow: state, steps, summary."""
    state = session(ctx, as_json)
    with state.client() as client:
        workflow = client.get_workflow(workflow_id)
    state.emit(workflow, lambda out: out.print(_workflow_table(workflow)))


@workflows.command("list")
def list_workflows(
    ctx: typer.Context,
    only: Annotated[str, typer.Option("--state", help="only this state: pending, running, succeeded, failed, cancelled")] = "",
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 20,
    as_json: Json = False,
) -> None:
    """Lists workflows, newest first."""
    state = session(ctx, as_json)
    with state.client() as client:
        found = client.list_workflows(f"WORKFLOW_STATE_{only.upper()}" if only else "", limit)

    def render(out: Console) -> None:
        table = Table("id", "type", "state", "progress", "created")
        for w in found:
            table.add_row(w.get("id", ""), w.get("type", ""), short(w.get("state", ""), "WORKFLOW_STATE_"),
                          f"{w.get('progressPercent', 0)}%", w.get("createTime", ""))
        out.print(table)

    state.emit(found, render)


@workflows.command("watch")
def watch_workflow(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(metavar="ID")],
    after: Annotated[int, typer.Option(help="start after this event sequence")] = 0,
    as_json: Json = False,
) -> None:
    """Follows a workflow's events to its end; exits 1 unless it succeeded."""
    state = session(ctx, as_json)
    with state.client() as client:
        workflow = follow(state, client, workflow_id, after)
    finish(state, workflow)


@workflows.command("cancel")
def cancel_workflow(ctx: typer.Context, workflow_id: Annotated[str, typer.Argument(metavar="ID")], as_json: Json = False) -> None:
    """Cancels a pending or running workflow."""
    state = session(ctx, as_json)
    with state.client() as client:
        workflow = client.cancel_workflow(workflow_id)
    state.emit(workflow, lambda out: print(f"{workflow['id']} {short(workflow.get('state', ''), 'WORKFLOW_STATE_')}"))


@workflows.command("types")
def workflow_types(ctx: typer.Context, as_json: Json = False) -> None:
    """Lists the workflow types and their steps."""
    state = session(ctx, as_json)
    with state.client() as client:
        found = client.list_workflow_types()

    def render(out: Console) -> None:
        table = Table("type", "steps", "description")
        for t in found:
            table.add_row(t.get("name", ""), ", ".join(t.get("steps", [])), t.get("description", ""))
        out.print(table)

    state.emit(found, render)


@tools.command("list")
def list_tools(ctx: typer.Context, as_json: Json = False) -> None:
    """Lists the tools, one per line: name and description."""
    state = session(ctx, as_json)
    with state.client() as client:
        found = client.list_tools()
    # One plain line per tool: easy to grep and cut, and never wrapped. A changed definition is refused until approved.
    def line(t: dict[str, Any]) -> str:
        changed = "[changed: not run until approved] " if t.get("definitionState") == "DEFINITION_STATE_CHANGED" else ""
        return f"{t.get('name', ''):<24} {changed}{t.get('description', '')}"

    state.emit(found, lambda out: print("\n".join(line(t) for t in found)))


@tools.command("get")
def get_tool(ctx: typer.Context, name: str, as_json: Json = False) -> None:
    """Shows one tool and its input schema."""
    state = session(ctx, as_json)
    with state.client() as client:
        tool = client.get_tool(name)

    def render(out: Console) -> None:
        out.print(f"{tool.get('name')}: {tool.get('description', '')}", highlight=False)
        if tool.get("server"):
            definition = short(tool.get("definitionState", ""), "DEFINITION_STATE_")
            out.print(f"from MCP server {tool['server']}; definition {definition}, hash {tool.get('definitionHash', '')}",
                      highlight=False)
            if definition == "changed":
                out.print(f"not executed until approved: mcpmesh tools approve {tool.get('name')} "
                          f"{tool.get('definitionHash', '')}", highlight=False)
        out.print_json(data=tool.get("inputSchema", {}))

    state.emit(tool, render)


@tools.command("execute")
def execute_tool(ctx: typer.Context, name: str, param: Params = None, parameters: ParamsJson = "", as_json: Json = False) -> None:
    """Executes a tool with NAME=VALUE arguments (or --parameters JSON) and prints its result."""
    state = session(ctx, as_json)
    values = arguments(state, param, parameters)
    with state.client() as client:
        answer = client.execute_tool(name, values)
    state.emit(answer, lambda out: print(json.dumps(answer, indent=2)))


@tools.command("approve")
def approve_tool(
    ctx: typer.Context, name: str,
    definition_hash: Annotated[str, typer.Argument(metavar="HASH", help="the definition hash you reviewed (`tools get NAME`)")],
    as_json: Json = False,
) -> None:
    """Approves the current definition of an external tool (admin): it runs again, pinned to HASH."""
    state = session(ctx, as_json)
    if not re.fullmatch(r"[0-9a-f]{64}", definition_hash):
        state.fail(f"HASH {definition_hash!r}: expected the 64 hex digits `mcpmesh tools get {name}` shows")
    with state.client() as client:
        tool = client.approve_tool(name, definition_hash)
    state.emit(tool, lambda out: print(f"{tool.get('name')} approved (definition {tool.get('definitionHash', '')})"))


Principal = Annotated[str, typer.Argument(metavar="PRINCIPAL", help="role:<viewer|operator|admin> or key:<id>")]
ToolPattern = Annotated[str, typer.Argument(metavar="TOOL", help="a tool name or pattern (fs_*, time.*, *)")]


@tools.command("grant")
def grant_tool(ctx: typer.Context, tool: ToolPattern, principal: Principal, as_json: Json = False) -> None:
    """Lets PRINCIPAL execute the tools TOOL matches (admin); once granted, that principal gets only its grants."""
    state = session(ctx, as_json)
    with state.client() as client:
        granted = client.grant_tool_permission(tool, principal)
    state.emit(granted, lambda out: print(f"{granted.get('principal')} may execute {granted.get('tool')}"))


@tools.command("revoke")
def revoke_tool(ctx: typer.Context, tool: ToolPattern, principal: Principal, as_json: Json = False) -> None:
    """Revokes a grant made with `tools grant` (admin)."""
    state = session(ctx, as_json)
    with state.client() as client:
        client.revoke_tool_permission(tool, principal)
    state.emit({"tool": tool, "principal": principal, "revoked": True},
               lambda out: print(f"{principal} no longer granted {tool}"))


@tools.command("permissions")
def list_tool_permissions(
    ctx: typer.Context,
    tool: Annotated[str, typer.Option(help="only the grants of this tool or pattern")] = "",
    as_json: Json = False,
) -> None:
    """Lists the tool grants: tool or pattern, principal, when."""
    state = session(ctx, as_json)
    with state.client() as client:
        found = client.list_tool_permissions(tool)

    def render(out: Console) -> None:
        table = Table("tool", "principal", "granted")
        for grant in found:
            table.add_row(grant.get("tool", ""), grant.get("principal", ""), grant.get("createTime", ""))
        out.print(table)

    state.emit(found, render)


def _server_target(server: dict[str, Any]) -> str:
    return server.get("url") or " ".join(server.get("command", []))


@mcp_servers.command("register")
def register_mcp_server(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="the server's name: its tools are listed as NAME.<tool>")],
    command: Annotated[list[str] | None, typer.Argument(
        metavar="[-- COMMAND [ARG ...]]", help="a stdio server: the command and its arguments (from the allow list)")] = None,
    url: Annotated[str, typer.Option(help="a streamable HTTP server: its URL, e.g. https://host/mcp")] = "",
    as_json: Json = False,
) -> None:
    """Registers an external MCP server, a stdio COMMAND or a --url, and prints its tools (pinned as approved)."""
    state = session(ctx, as_json)
    if bool(command) == bool(url):
        state.fail("give the server either as a stdio command after `--` "
                   "(mcpmesh mcp-servers register NAME -- COMMAND ARG ...) or as --url, not both")
    with state.client() as client:
        server = client.register_mcp_server(name, command or [], url)

    def render(out: Console) -> None:
        found = server.get("tools", [])
        print(f"{server.get('name')} {short(server.get('state', ''), 'MCP_SERVER_STATE_')}: {len(found)} tools")
        if found:
            print("\n".join(found))

    state.emit(server, render)


@mcp_servers.command("list")
def list_mcp_servers(ctx: typer.Context, as_json: Json = False) -> None:
    """Lists the external MCP servers: transport, state, tools and the last error."""
    state = session(ctx, as_json)
    with state.client() as client:
        found = client.list_mcp_servers()

    def render(out: Console) -> None:
        table = Table("name", "transport", "server", "state", "tools", "last error")
        for server in found:
            table.add_row(server.get("name", ""), short(server.get("transport", ""), "MCP_TRANSPORT_"), _server_target(server),
                          short(server.get("state", ""), "MCP_SERVER_STATE_"), str(len(server.get("tools", []))),
                          server.get("lastError", ""))
        out.print(table)

    state.emit(found, render)


@mcp_servers.command("remove")
def remove_mcp_server(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")], as_json: Json = False) -> None:
    """Removes an external MCP server and its tools (admin); its session is closed on every instance."""
    state = session(ctx, as_json)
    with state.client() as client:
        client.remove_mcp_server(name)
    state.emit({"name": name, "removed": True}, lambda out: print(f"{name} removed"))


@agents.command("list")
def list_agents(ctx: typer.Context, as_json: Json = False) -> None:
    """Lists the agents."""
    state = session(ctx, as_json)
    with state.client() as client:
        found = client.list_agents()

    def render(out: Console) -> None:
        table = Table("name", "title", "LLM", "description")
        for a in found:
            table.add_row(a.get("name", ""), a.get("displayName", ""), "on" if a.get("llmEnabled") else "off", a.get("description", ""))
        out.print(table)

    state.emit(found, render)


@agents.command("run")
def run_agent(
    ctx: typer.Context, name: str,
    path: Annotated[Path | None, typer.Option(help="folder to analyse (sets input.path)")] = None,
    param: Params = None, parameters: ParamsJson = "", as_json: Json = False,
) -> None:
    """Runs an agent once and prints its summary and findings; exits 1 when the run failed."""
    from clients.analyze import findings_table

    state = session(ctx, as_json)
    values = arguments(state, param, parameters)
    if path is not None:
        values["path"] = str(path.resolve())
    with state.client() as client:
        run = client.run_agent(name, values)

    def render(out: Console) -> None:
        out.print(f"run {run.get('id', '')} {short(run.get('state', ''), 'RUN_STATE_')}: {run.get('summary', '')}", highlight=False)
        if run.get("findings"):
            out.print(findings_table(run["findings"]))

    state.emit(run, render)
    if short(run.get("state", ""), "RUN_STATE_") == "failed":
        print(f"error: agent run failed: {run.get('error', '')}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED)


ROLES = ("viewer", "operator", "admin")


@keys.command("create")
def create_key(
    ctx: typer.Context, name: str,
    role: Annotated[str, typer.Option(help="viewer, operator or admin")] = "viewer",
    as_json: Json = False,
) -> None:
    """Creates a key and prints its secret: shown only this once."""
    state = session(ctx, as_json)
    if role not in ROLES:
        state.fail(f"--role {role!r}: choose one of {', '.join(ROLES)}", EXIT_ERROR)
    with state.client() as client:
        created = client.create_api_key(name, f"ROLE_{role.upper()}")
    key = created.get("apiKey", {})

    def render(out: Console) -> None:
        print(created.get("secret", ""))
        print(f"key {key.get('id')} ({role}) created; the secret above is shown only once", file=sys.stderr)

    state.emit(created, render)


@keys.command("list")
def list_keys(ctx: typer.Context, as_json: Json = False) -> None:
    """Lists API keys, newest first (never their secrets)."""
    state = session(ctx, as_json)
    with state.client() as client:
        found = client.list_api_keys()

    def render(out: Console) -> None:
        table = Table("id", "name", "role", "created", "revoked")
        for k in found:
            table.add_row(k.get("id", ""), k.get("displayName", ""), short(k.get("role", ""), "ROLE_"),
                          k.get("createTime", ""), k.get("revokeTime", "") or "")
        out.print(table)

    state.emit(found, render)


@keys.command("revoke")
def revoke_key(ctx: typer.Context, key_id: Annotated[str, typer.Argument(metavar="ID")], as_json: Json = False) -> None:
    """Revokes a key: later calls with it are refused."""
    state = session(ctx, as_json)
    with state.client() as client:
        key = client.revoke_api_key(key_id)
    state.emit(key, lambda out: print(f"key {key.get('id')} revoked"))
