"""`python -m services.gateway`: the one entry for outside calls, on port 3000 (WebSocket on 3100)."""

from services.gateway.app import build
from services.runtime.server import run_main

run_main("gateway", build)
