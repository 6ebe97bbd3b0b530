"""On a mesh of its own (a service is stopped): the overview shows the service turn unhealthy, live, and recover."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from services.launcher.processes import LocalMesh
from tests.browser.conftest import PageFactory, sign_in
from tests.conftest import start_mesh, wait_until


@pytest.fixture()
def own_mesh(tmp_path: Path, sample_project: Path) -> Iterator[LocalMesh]:
    # Tokens of 12 s: the page must exchange the key again before each expires, with no failed call.
    mesh = start_mesh(tmp_path / "data", sample_project.parent, MCPMESH_TOKEN_TTL="12")
    yield mesh
    mesh.stop()


def test_a_stopped_service_turns_unhealthy_on_the_overview(own_mesh: LocalMesh, open_page: PageFactory, artifacts: Path) -> None:
    # own_mesh first: it is set up before the page and stopped after it, so the page never sees the mesh go away.
    page = open_page()
    exchanges: list[float] = []
    page.on("request", lambda request: exchanges.append(time.monotonic()) if request.url.endswith("/v1/tokens") else None)
    sign_in(page, own_mesh.edge_url, own_mesh.admin_key())
    tools = page.locator("[data-service=tools]")
    expect(tools.locator("header .badge")).to_have_text("serving")
    own_mesh.stop_service("tools")
    # No reload: the service_health event over the WebSocket redraws the card.
    expect(tools).to_have_class("card service s-not_serving", timeout=60_000)
    expect(tools.locator("header .badge")).to_have_text("not serving")
    expect(tools.locator(".instances .dot.bad")).to_have_count(1)
    expect(page.locator("[data-service=agents] header .badge")).to_have_text("serving")
    page.screenshot(path=artifacts / "overview-tools-down.png", full_page=True)
    own_mesh.start_service("tools")
    own_mesh.wait_healthy(30, ["tools"])
    expect(tools.locator("header .badge")).to_have_text("serving", timeout=60_000)
    # Past the first token's lifetime, the key was exchanged again ahead of expiry and calls still work.
    wait_until(lambda: time.monotonic() - exchanges[0] > 14, 20, "the first token to expire")
    assert len(exchanges) >= 2, exchanges
    page.goto(f"{own_mesh.edge_url}/#/workflows")
    expect(page.get_by_role("heading", name="Start a workflow")).to_be_visible()
    expect(page.locator(".live")).to_have_attribute("data-state", "live")
