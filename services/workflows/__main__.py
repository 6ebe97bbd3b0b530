"""`python -m services.workflows`: LangGraph workflow orchestration on port 3003."""

from services.runtime.server import run_main
from services.workflows.app import build

run_main("workflows", build)
