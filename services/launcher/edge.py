"""`python -m services.launcher.edge`: Envoy in a container (the `envoy` image target): render its config, then run it.

The config is rendered at start from the package's envoy files and the topology, with DNS clusters (ECS Service
Connect names by default, compose service names with MCPMESH_DNS_SUFFIX=""), so the image carries no copy to drift."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from services.launcher.certificates import edge_tls
from services.launcher.envoy_config import Ports, render
from services.launcher.processes import envoy_binary
from services.runtime import topology
from services.runtime.config import Config


def config_text(env: dict[str, str] | os._Environ[str] = os.environ) -> tuple[Path, str]:
    """The folder Envoy runs in and its config, from the container's environment."""
    data_dir = Path(env.get("MCPMESH_DATA_DIR", "/var/lib/mcpmesh"))
    suffix = env.get("MCPMESH_DNS_SUFFIX", f".{topology.NAMESPACE}")
    tls = edge_tls(data_dir, env)  # operator files (MCPMESH_TLS_CERT/KEY) or a local CA made at first start
    text = render(
        Ports(),
        edge_host="0.0.0.0",
        service_hosts={name: f"{name}{suffix}" for name in topology.NAMES},
        tls={"cert": tls.server_cert, "key": tls.server_key},
        otlp_endpoint=env.get("MCPMESH_OTLP_ENDPOINT", ""),
        # In compose the services reach each other through this Envoy's mesh listener; in ECS, through Service Connect.
        mesh_host=env.get("MCPMESH_MESH_HOST", "127.0.0.1"),
        trace_sample=Config.from_env("envoy", dict(env)).trace_sample,
    )
    return data_dir, text


def main() -> None:
    data_dir, text = config_text()
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "envoy.yaml"
    config.write_text(text)
    if "--print" in sys.argv:
        sys.stdout.write(text)
        return
    envoy = envoy_binary()
    # Envoy becomes PID 1's process: it gets the container's SIGTERM directly.
    os.execv(envoy, [envoy, "-c", str(config), "--log-level", os.environ.get("ENVOY_LOG_LEVEL", "info")])


if __name__ == "__main__":
    main()
