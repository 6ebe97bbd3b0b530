"""What every CLI command shares: resolved settings, the REST client, JSON or Rich output, one-line failures."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx
import typer
from rich.console import Console

from clients.failures import describe
from clients.rest import ApiError, McpMeshClient
from clients.settings import Settings, token_cache_path

EXIT_FAILED = 1  # the thing ran and failed: a workflow failed, findings reached --fail-on, a service is down
EXIT_ERROR = 2  # the request could not be made or was refused


@dataclass
class Session:
    settings: Settings
    as_json: bool = False
    out: Console = field(default_factory=lambda: Console(soft_wrap=True))
    err: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

    def fail(self, message: str, code: int = EXIT_ERROR) -> NoReturn:
        # Plain print, not Rich markup: server messages may hold brackets.
        print(f"error: {message}", file=sys.stderr)
        raise typer.Exit(code)

    @contextmanager
    def client(self) -> Iterator[McpMeshClient]:
        """A connected client; any failure inside becomes one line on stderr and exit code 2."""
        if not self.settings.api_key:
            self.fail("no API key: set MCP_API_KEY, pass --api-key, or run `mcpmesh login` "
                      "(the local admin key is in .mcpmesh/admin.key)")
        try:
            client = McpMeshClient(self.settings.url, self.settings.api_key, verify=self.settings.verify(),
                                   token_cache=token_cache_path())
        except (OSError, ValueError) as error:  # an unreadable --ca-cert
            self.fail(f"cannot load the CA bundle {self.settings.ca_cert!r}: {error}; pass a PEM file with --ca-cert")
        try:
            yield client
        except (ApiError, httpx.HTTPError, OSError) as error:
            self.fail(describe(error, self.settings.url))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        finally:
            client.close()

    def emit(self, data: Any, render: Callable[[Console], None]) -> None:
        """JSON on stdout for scripts (--json), else the Rich rendering."""
        if self.as_json:
            print(json.dumps(data, indent=2))
        else:
            render(self.out)


def session(ctx: typer.Context, as_json: bool = False) -> Session:
    """The session built by the top-level callback; a command's own --json turns JSON on too."""
    state: Session = ctx.find_root().obj
    state.as_json = state.as_json or as_json
    return state


def short(enum_value: str, prefix: str) -> str:
    """WORKFLOW_STATE_SUCCEEDED -> succeeded."""
    return str(enum_value).removeprefix(prefix).lower()
