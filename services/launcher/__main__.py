"""`python -m services.launcher`: start the mesh on its embedded defaults, run a first code_analysis, serve until Ctrl-C.

While serving it restarts any process that dies. Ctrl-C or SIGTERM (to it or to its process group) stops every
service, then Envoy; further signals during that shutdown are ignored so it always completes."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from clients.events import format_event
from clients.rest import ApiError, McpMeshClient
from services.launcher.envoy_config import Ports
from services.launcher.processes import LocalMesh
from services.launcher.supervisor import Supervisor


def run_first_analysis(mesh: LocalMesh, path: Path) -> bool:
    client = McpMeshClient(mesh.edge_url, mesh.admin_key(), client_type="launcher")
    try:
        workflow = client.create_workflow("code_analysis", {"path": str(path)})
        print(f"\ncode_analysis of {path}: workflow {workflow['id']}")
        for event in client.watch_workflow(workflow["id"]):
            print(f"  {format_event(event)}")
        final = client.get_workflow(workflow["id"])
    except ApiError as error:
        print(f"first analysis failed: {error} {error.body}", file=sys.stderr)
        return False
    finally:
        client.close()
    if final["state"] != "WORKFLOW_STATE_SUCCEEDED":
        print(f"workflow ended {final['state']}: {final.get('error', {}).get('message', '')}", file=sys.stderr)
        return False
    result = final["result"]
    print(f"\nsummary: {result['summary']}")
    for finding in result.get("findings", [])[:10]:
        print(f"  {finding['severity'].removeprefix('SEVERITY_'):<8} {finding['rule_id']} {finding['file']}:{finding['line']} {finding['message']}")
    if len(result.get("findings", [])) > 10:
        print(f"  ... and {len(result['findings']) - 10} more")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", type=Path, default=Path.cwd(), help="folder the first code_analysis runs on")
    parser.add_argument("--data-dir", type=Path, default=Path(".mcpmesh"), help="databases, keys and logs")
    parser.add_argument("--no-analysis", action="store_true", help="start the mesh without the first workflow")
    parser.add_argument("--exit", action="store_true", help="stop after the first workflow instead of serving")
    parser.add_argument("--instances", default="", metavar="SERVICE=N,...",
                        help="processes per service, e.g. gateway=2,agents=3 (limits: services.runtime.topology.max_instances)")
    parser.add_argument("--free-ports", action="store_true", help="free loopback ports instead of the design's (next to a running mesh)")
    args = parser.parse_args()
    try:
        counts = {name: int(count) for name, _, count in (p.partition("=") for p in args.instances.split(",") if p)}
        ports = Ports.free() if args.free_ports else Ports()
        mesh = LocalMesh(args.data_dir.resolve(), ports=ports, workspace_roots=[args.path.resolve()], instances=counts)
    except ValueError as error:
        parser.error(f"--instances: {error}")
    # Ctrl-C and SIGTERM both end in the finally below, which stops every child by PID. SIGINT is set
    # explicitly: a launcher started in the background by a non-interactive shell inherits it ignored.
    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    ok = True
    try:
        started = time.monotonic()
        mesh.start()
        Supervisor(mesh, _say).start()
        print(f"mcpmesh is up in {time.monotonic() - started:.1f}s")
        print(f"  REST and gRPC edge  {mesh.edge_url}   (grpcurl -plaintext 127.0.0.1:{mesh.ports.edge} list)")
        if mesh.tls is not None:
            print(f"  HTTPS edge          {mesh.https_url}   (CA {mesh.tls.ca_cert}; the CLI's default)")
        print(f"  WebSocket           ws://127.0.0.1:{mesh.ports.edge}/ws")
        print(f"  Envoy admin         {mesh.admin_url}")
        print(f"  admin API key       {args.data_dir / 'admin.key'}   (export MCP_API_KEY=$(cat {args.data_dir / 'admin.key'}))")
        print(f"  logs                {mesh.logs}")
        if not args.no_analysis:
            ok = run_first_analysis(mesh, args.path.resolve())
        if not args.exit:
            print("\nserving; Ctrl-C stops everything")
            while True:
                time.sleep(3600)
    except (KeyboardInterrupt, _Shutdown):
        pass
    except RuntimeError as error:
        print(error, file=sys.stderr)
        ok = False
    finally:
        _ignore_signals()
        print("stopping", flush=True)
        mesh.stop()
        print("stopped", flush=True)
    sys.exit(0 if ok else 1)


class _Shutdown(Exception):
    """Raised in the main thread by the first SIGTERM or SIGINT."""


def _ignore_signals() -> None:
    """From here on a second Ctrl-C or SIGTERM (a group signal reaches us more than once) cannot cut the shutdown short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _shutdown(signum: int, _frame: object) -> None:
    _ignore_signals()
    print(f"\n{signal.Signals(signum).name}: stopping every service, then Envoy", flush=True)
    raise _Shutdown


def _say(line: str) -> None:
    print(f"[launcher] {line}", flush=True)


if __name__ == "__main__":
    main()
