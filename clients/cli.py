"""`mcpmesh`: the command line over the REST edge (MCP_API_KEY holds the key)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from clients.rest import ApiError, McpMeshClient


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _arguments(pairs: list[str], raw: str) -> dict[str, Any]:
    arguments: dict[str, Any] = json.loads(raw) if raw else {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--arg {pair!r}: expected NAME=VALUE")
        try:
            arguments[name] = json.loads(value)
        except ValueError:
            arguments[name] = value
    return arguments


def _watch(client: McpMeshClient, workflow_id: str) -> int:
    for event in client.watch_workflow(workflow_id):
        step = f" [{event['step']}]" if event.get("step") else ""
        print(f"#{event['sequence']:<3} {event['progressPercent']:>3}%{step} {event['message']}", file=sys.stderr)
    workflow = client.get_workflow(workflow_id)
    if workflow["state"] == "WORKFLOW_STATE_SUCCEEDED":
        print(workflow["result"]["summary"])
        return 0
    print(f"workflow {workflow['state']}: {workflow.get('error', {}).get('message', '')}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace, client: McpMeshClient) -> int:
    if args.command == "workflow" and args.action == "create":
        parameters = _arguments(args.param, args.parameters)
        if args.path:
            parameters["path"] = str(Path(args.path).resolve())
        workflow = client.create_workflow(args.type, parameters, args.request_id)
        print(workflow["id"])
        return _watch(client, workflow["id"]) if args.watch else 0
    if args.command == "workflow" and args.action == "status":
        _print(client.get_workflow(args.id))
        return 0
    if args.command == "workflow" and args.action == "watch":
        return _watch(client, args.id)
    if args.command == "tools" and args.action == "list":
        for tool in client.list_tools():
            print(f"{tool['name']:<24} {tool['description']}")
        return 0
    if args.command == "tools" and args.action == "execute":
        _print(client.execute_tool(args.name, _arguments(args.arg, args.json)))
        return 0
    if args.command == "health":
        _print(client.system_health())
        return 0
    raise SystemExit(f"unknown command {args.command} {getattr(args, 'action', '')}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="mcpmesh", description=__doc__)
    top.add_argument("--url", default=os.environ.get("MCPMESH_URL", "http://127.0.0.1:8080"), help="edge URL (MCPMESH_URL)")
    top.add_argument("--ca-cert", default=os.environ.get("MCPMESH_CA_CERT", ""), help="CA bundle for an HTTPS edge")
    commands = top.add_subparsers(dest="command", required=True)

    workflow = commands.add_parser("workflow", help="create, inspect and watch workflows").add_subparsers(dest="action", required=True)
    create = workflow.add_parser("create", help="create a workflow")
    create.add_argument("--type", default="code_analysis")
    create.add_argument("--path", help="folder to analyse (sets parameters.path)")
    create.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    create.add_argument("--parameters", default="", help="parameters as a JSON object")
    create.add_argument("--request-id", default="", help="idempotency key")
    create.add_argument("--watch", action="store_true", help="follow the workflow to its end")
    workflow.add_parser("status", help="show a workflow").add_argument("id")
    workflow.add_parser("watch", help="follow a workflow's events").add_argument("id")

    tools = commands.add_parser("tools", help="list and execute tools").add_subparsers(dest="action", required=True)
    tools.add_parser("list", help="list tools")
    execute = tools.add_parser("execute", help="execute a tool")
    execute.add_argument("name")
    execute.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE")
    execute.add_argument("--json", default="", help="arguments as a JSON object")

    commands.add_parser("health", help="health of every service")
    return top


def main() -> None:
    args = parser().parse_args()
    key = os.environ.get("MCP_API_KEY", "")
    if not key:
        raise SystemExit("MCP_API_KEY is not set: export MCP_API_KEY=$(cat .mcpmesh/admin.key)")
    client = McpMeshClient(args.url, key, verify=args.ca_cert or True)
    try:
        code = run(args, client)
    except ApiError as error:
        body: dict[str, Any] = error.body if isinstance(error.body, dict) else {"message": str(error.body)}
        print(f"error: HTTP {error.status}: {body.get('message', '')}", file=sys.stderr)
        for detail in body.get("details", []):
            for violation in detail.get("fieldViolations", []):
                print(f"  {violation['field']}: {violation['description']}", file=sys.stderr)
        code = 2
    finally:
        client.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
