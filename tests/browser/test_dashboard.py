"""The dashboard in a real browser against the real mesh: sign in, run workflows, read results, tools, keys, phone width."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from services.launcher.processes import LocalMesh
from tests.browser.conftest import PageFactory, sign_in

# What the Code Analyzer finds in the session's sample project (tests/conftest.py), as the main-flow test checks.
KNOWN_FINDINGS = {
    ("B404", "app/main.py", "1"), ("B006", "app/main.py", "3"), ("B307", "app/main.py", "5"),
    ("E722", "app/main.py", "6"), ("B602", "app/main.py", "10"), ("SECRET-KEYWORD", "app/settings.py", "1"),
}


def start_from_form(page: Page, edge_url: str, kind: str, folder: Path) -> str:
    """Starts a workflow with the form built from its type's schema; returns its id (the page opens it)."""
    page.goto(f"{edge_url}/#/workflows")
    page.select_option("#wf-type", kind)
    page.get_by_label("path").fill(str(folder))
    page.get_by_role("button", name="Start workflow").click()
    page.wait_for_url("**/#/workflows/*")
    return page.url.rsplit("/", 1)[1]


def wait_done(page: Page) -> None:
    expect(page.locator(".wf-head [role=progressbar]")).to_have_attribute("aria-valuenow", "100", timeout=120_000)
    expect(page.locator(".wf-head .badge")).to_have_text("succeeded", timeout=30_000)


def test_sign_in_keeps_the_key_for_the_tab_only(open_page: PageFactory, mesh: LocalMesh, admin_key: str, artifacts: Path) -> None:
    page = open_page(allow=("status of 401",))  # the refused key's own answer
    page.goto(f"{mesh.edge_url}/")
    page.fill("#api-key", "mk_nothing_like_a_key")
    page.keyboard.press("Enter")
    expect(page.locator(".sign-in .error")).to_contain_text("not accepted")
    page.screenshot(path=artifacts / "sign-in.png")
    page.fill("#api-key", admin_key)
    page.keyboard.press("Enter")
    expect(page.locator(".who")).to_contain_text("admin")
    assert page.evaluate("sessionStorage.getItem('mcpmesh.apiKey')") == admin_key
    assert page.evaluate("localStorage.length") == 0
    # The page itself is public; the API behind it is not.
    assert httpx.get(f"{mesh.edge_url}/v1/workflows").status_code == 401


def test_overview_shows_every_service_and_metrics(open_page: PageFactory, mesh: LocalMesh, admin_key: str, artifacts: Path) -> None:
    page = open_page()
    sign_in(page, mesh.edge_url, admin_key)
    for service in ("gateway", "agents", "tools", "workflows"):
        card = page.locator(f"[data-service={service}]")
        expect(card.locator("header .badge")).to_have_text("serving")
        expect(card.locator(".instances li .dot.ok")).to_have_count(1)
    expect(page.locator("figure.chart")).to_have_count(6)
    expect(page.locator("[data-metric=ActiveWorkflows] .value")).to_have_text("0")
    page.screenshot(path=artifacts / "overview.png", full_page=True)


def test_code_analysis_runs_live_to_its_findings(open_page: PageFactory, mesh: LocalMesh, admin_key: str, sample_project: Path,
                                                 artifacts: Path) -> None:
    page = open_page()
    sign_in(page, mesh.edge_url, admin_key)
    page.goto(f"{mesh.edge_url}/#/workflows")
    expect(page.get_by_label("path")).to_have_attribute("required", "")
    page.screenshot(path=artifacts / "workflows.png", full_page=True)
    start_from_form(page, mesh.edge_url, "code_analysis", sample_project)
    wait_done(page)
    # Every step and every event arrived, in order, with no reload of the page.
    expect(page.locator(".step.s-succeeded")).to_have_count(3)
    sequences = [int(s) for s in page.locator(".events li").evaluate_all("items => items.map(i => i.dataset.seq)")]
    assert sequences == list(range(1, len(sequences) + 1)) and len(sequences) >= 8
    expect(page.locator(".events li").last).to_contain_text("succeeded")
    expect(page.locator(".meta")).to_contain_text("by key:")  # the key it runs as
    page.screenshot(path=artifacts / "workflow.png", full_page=True)

    page.get_by_role("tab", name="Findings (6)").click()
    rows = page.locator("tr.finding")
    expect(rows).to_have_count(6)
    found = {tuple(r) for r in rows.evaluate_all("rows => rows.map(r => [r.dataset.rule, r.dataset.file, r.dataset.line])")}
    assert found == KNOWN_FINDINGS
    # Sorted by severity first: the two high ones lead.
    expect(rows.nth(0).locator(".badge")).to_have_text("high")
    page.screenshot(path=artifacts / "findings.png", full_page=True)
    # Filter, open the snippet, sort by rule.
    page.fill("#findings-filter", "shell")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("button", name="B602").click()
    expect(page.locator("tr.detail pre.snippet")).to_contain_text("subprocess.run(cmd, shell=True)")
    page.fill("#findings-filter", "")
    page.get_by_role("button", name="Rule").click()
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.rule)") == sorted(r for r, _, _ in KNOWN_FINDINGS)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download SARIF").click()
    sarif = json.loads(Path(download.value.path()).read_text())
    assert sarif["version"] == "2.1.0"
    results = [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], r["locations"][0]["physicalLocation"]["region"]["startLine"])
               for run in sarif["runs"] for r in run["results"]]
    assert {(rule, file, str(line)) for rule, file, line in results} == KNOWN_FINDINGS


def test_knowledge_graph_is_drawn_and_a_node_shows_its_neighbours(open_page: PageFactory, mesh: LocalMesh, admin_key: str,
                                                                  sample_project: Path, artifacts: Path) -> None:
    page = open_page()
    sign_in(page, mesh.edge_url, admin_key)
    start_from_form(page, mesh.edge_url, "knowledge_build", sample_project)
    wait_done(page)
    page.get_by_role("tab", name="Knowledge graph").click()
    panel = page.locator("#panel-graph")
    expect(panel).to_have_attribute("data-graph-ready", "true", timeout=30_000)
    expect(panel.locator(".graph-canvas canvas").first).to_be_visible()
    expect(panel.get_by_role("status").first).to_contain_text("nodes")
    # Keyboard path: find a node by name, then its neighbours are listed and can be followed.
    page.fill("#graph-pick", "main")  # the module app/main.py (app is a folder, not a package)
    page.keyboard.press("Enter")
    side = panel.locator(".graph-side")
    expect(side.locator("h3")).to_have_text("main", timeout=15_000)
    expect(side.locator("h4")).to_contain_text("Neighbours")
    names = side.locator(".neighbours button").all_inner_texts()
    assert {"handler", "run"} <= set(names), names
    page.get_by_role("button", name="Zoom in").click()
    page.screenshot(path=artifacts / "graph.png", full_page=True)
    side.get_by_role("button", name="handler").click()
    expect(side.locator("h3")).to_have_text("handler")


def test_a_tool_runs_from_its_form(open_page: PageFactory, mesh: LocalMesh, admin_key: str, sample_project: Path, artifacts: Path) -> None:
    page = open_page(allow=("status of 400",))  # the refused folder's own answer
    sign_in(page, mesh.edge_url, admin_key)
    page.goto(f"{mesh.edge_url}/#/tools")
    tool = page.locator("#tool-file_inventory")
    tool.locator("summary").click()
    tool.get_by_label("path").fill(str(sample_project))
    tool.get_by_role("button", name="Execute").click()
    result = tool.locator(".tool-result pre")
    expect(result).to_contain_text('"total_files": 5')
    page.screenshot(path=artifacts / "tools.png", full_page=True)
    # The form keeps the schema's bounds (the browser refuses -1 before sending) ...
    tool.get_by_label("max_files").fill("-1")
    assert tool.get_by_label("max_files").evaluate("input => input.validity.rangeUnderflow")
    tool.get_by_label("max_files").fill("")
    # ... and a folder outside the workspace is the server's clear error, shown in the form.
    tool.get_by_label("path").fill("/etc")
    tool.get_by_role("button", name="Execute").click()
    expect(tool.locator(".error")).to_contain_text("path")


def test_admin_creates_and_revokes_a_key(open_page: PageFactory, mesh: LocalMesh, admin_key: str, artifacts: Path) -> None:
    page = open_page()
    sign_in(page, mesh.edge_url, admin_key)
    page.goto(f"{mesh.edge_url}/#/keys")
    page.fill("#key-name", "dashboard-viewer")
    page.select_option("#key-role", "ROLE_VIEWER")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#new-secret").input_value()
    assert secret.startswith("mk_")
    row = page.locator("tr", has_text="dashboard-viewer")
    expect(row.locator(".badge").first).to_have_text("viewer")
    page.screenshot(path=artifacts / "keys.png", full_page=True)
    assert httpx.post(f"{mesh.edge_url}/v1/tokens", json={}, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke dashboard-viewer").click()
    expect(row.locator("text=revoked")).to_be_visible()
    assert httpx.post(f"{mesh.edge_url}/v1/tokens", json={}, headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_phone_width_and_keyboard_only(open_page: PageFactory, mesh: LocalMesh, admin_key: str, artifacts: Path) -> None:
    page = open_page(width=390, height=844)
    page.goto(f"{mesh.edge_url}/")
    expect(page.locator("#api-key")).to_be_focused()
    page.keyboard.type(admin_key)
    page.keyboard.press("Enter")
    expect(page.locator(".live[data-state='live']")).to_be_visible(timeout=20_000)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("#main")).to_be_focused()  # after signing in, focus goes to the content
    # The menu folds behind a button; open it and reach Workflows with Tab and Enter only.
    expect(page.locator("#nav a[data-page=workflows]")).to_be_hidden()
    page.locator(".menu-toggle").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#nav a[data-page=workflows]")).to_be_visible()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.locator("#nav a[data-page=workflows]")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Start a workflow")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    page.screenshot(path=artifacts / "phone-workflows.png", full_page=True)


def test_reconnect_resumes_from_the_last_event(open_page: PageFactory, mesh: LocalMesh, admin_key: str, sample_project: Path) -> None:
    page = open_page()
    sign_in(page, mesh.edge_url, admin_key)
    start_from_form(page, mesh.edge_url, "code_analysis", sample_project)
    expect(page.locator(".events li").first).to_be_visible()
    page.evaluate("window.mcpmeshLive.drop()")  # as a dropped connection would, mid-run
    expect(page.locator(".live")).to_have_attribute("data-state", "live", timeout=20_000)
    wait_done(page)
    sequences = [int(s) for s in page.locator(".events li").evaluate_all("items => items.map(i => i.dataset.seq)")]
    assert sequences == list(range(1, len(sequences) + 1))
    expect(page.locator(".events li").last).to_contain_text("succeeded")


def test_repository_review_shows_the_er_diagram_and_the_documentation(open_page: PageFactory, mesh: LocalMesh, admin_key: str,
                                                                     sample_project: Path, artifacts: Path) -> None:
    fixtures = Path(__file__).parents[1] / "fixtures"
    folder = sample_project.parent / "shop-review"
    shutil.copytree(fixtures / "knowledge" / "shop", folder, dirs_exist_ok=True)
    for name in ("shop_postgres.sql", "shop_queries.sql"):
        shutil.copy(fixtures / "database" / name, folder / name)
    page = open_page()
    sign_in(page, mesh.edge_url, admin_key)
    start_from_form(page, mesh.edge_url, "repository_review", folder)
    wait_done(page)
    expect(page.locator(".step.s-succeeded")).to_have_count(6)

    page.get_by_role("tab", name="Database").click()
    diagram = page.locator("#panel-database .er svg")
    expect(diagram).to_be_visible(timeout=30_000)
    for table in ("customers", "orders", "order_items", "products"):
        expect(diagram.get_by_text(table, exact=True).first).to_be_visible()
    expect(page.locator("#panel-database pre.snippet")).to_contain_text("CREATE INDEX")
    page.screenshot(path=artifacts / "database.png", full_page=True)

    page.get_by_role("tab", name="Documentation").click()
    docs = page.locator("#panel-docs")
    expect(docs.locator("article.doc h1")).to_be_visible(timeout=30_000)
    docs.get_by_role("button", name="architecture.md").click()
    expect(docs.locator("article.doc h1")).to_contain_text("Architecture")
    expect(docs.locator("article.doc .mermaid-holder svg")).to_be_visible(timeout=30_000)
    page.screenshot(path=artifacts / "documentation.png", full_page=True)


def test_a_viewer_sees_no_admin_page_and_no_start_form(open_page: PageFactory, mesh: LocalMesh, admin_key: str) -> None:
    created = httpx.post(f"{mesh.edge_url}/v1/api-keys", json={"displayName": "browser-viewer", "role": "ROLE_VIEWER"},
                         headers={"Authorization": f"Bearer {admin_key}"})
    assert created.status_code == 200, created.text
    page = open_page()
    sign_in(page, mesh.edge_url, created.json()["secret"])
    expect(page.locator(".who")).to_contain_text("viewer")
    expect(page.locator("#nav a[data-page=keys]")).to_be_hidden()
    page.goto(f"{mesh.edge_url}/#/workflows")
    expect(page.get_by_text("it can watch workflows")).to_be_visible()
    expect(page.locator("form.start-form")).to_have_count(0)
    page.goto(f"{mesh.edge_url}/#/tools")
    expect(page.get_by_text("a viewer's key none unless an admin granted them")).to_be_visible()
    expect(page.get_by_text("This key may execute no tool.")).to_be_visible()  # no grant: nothing to execute
    expect(page.locator("form.tool-form")).to_have_count(0)
