"""Registration rules for external MCP servers: names, the stdio allow list, and SSRF checks on URLs."""

from __future__ import annotations

import pytest

from services.runtime.errors import InvalidArgument
from services.tools.mcp_servers import ServerRules

RULES = ServerRules(stdio_commands=("mcp-server-time", "/opt/mcp/bin/server"), allowed_networks=("10.9.0.0/16",))


@pytest.mark.parametrize("name", ["", "Time", "1time", "a" * 33, "ti me", "time.x", "../x"])
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        RULES.check_name(name)
    assert refused.value.violations[0].field == "server.name"


def test_good_names() -> None:
    for name in ("time", "git-hub", "a1_b2"):
        RULES.check_name(name)


@pytest.mark.parametrize(
    "command",
    [[], [""], ["bash", "-c", "id"], ["/usr/bin/mcp-server-time"], ["mcp-server-time\0x"], ["./mcp-server-time"]],
)
def test_commands_outside_the_allow_list_are_refused(command: list[str]) -> None:
    with pytest.raises(InvalidArgument) as refused:
        RULES.check_command(command)
    assert refused.value.violations[0].field == "server.command"


def test_allowed_commands_pass_with_any_arguments() -> None:
    RULES.check_command(["mcp-server-time", "--local-timezone", "UTC"])
    RULES.check_command(["/opt/mcp/bin/server"])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "MCP_URL_FORBIDDEN"),
        ("http://[fd00:ec2::254]/", "MCP_URL_FORBIDDEN"),
        ("http://127.0.0.1:8080/mcp", "MCP_URL_FORBIDDEN"),
        ("http://localhost/mcp", "MCP_URL_FORBIDDEN"),
        ("http://[::1]/mcp", "MCP_URL_FORBIDDEN"),
        ("http://[::ffff:127.0.0.1]/mcp", "MCP_URL_FORBIDDEN"),
        ("http://10.0.0.5/mcp", "MCP_URL_FORBIDDEN"),
        ("http://192.168.1.1/mcp", "MCP_URL_FORBIDDEN"),
        ("http://172.16.0.1/mcp", "MCP_URL_FORBIDDEN"),
        ("http://100.64.0.1/mcp", "MCP_URL_FORBIDDEN"),  # carrier-grade NAT
        ("http://0.0.0.0/mcp", "MCP_URL_FORBIDDEN"),
        ("http://2130706433/mcp", "MCP_URL_FORBIDDEN"),  # 127.0.0.1 as one number
        ("http://0x7f.1/mcp", "MCP_URL_FORBIDDEN"),
        ("ftp://example.org/mcp", "INVALID_ARGUMENT"),
        ("file:///etc/passwd", "INVALID_ARGUMENT"),
        ("http:///mcp", "INVALID_ARGUMENT"),
        ("http://example.org:99999/mcp", "INVALID_ARGUMENT"),
        ("http://no-such-host.invalid/mcp", "MCP_URL_UNRESOLVED"),
    ],
)
async def test_ssrf_refusals(url: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await RULES.check_url(url)
    assert refused.value.violations[0].field == "server.url"
    assert refused.value.reason == reason


async def test_allowed_networks_open_private_ranges_but_never_metadata() -> None:
    await RULES.check_url("http://10.9.3.4:8000/mcp")
    loopback = ServerRules(allowed_networks=("127.0.0.1", "169.254.0.0/16"))
    await loopback.check_url("http://127.0.0.1:3001/mcp")
    with pytest.raises(InvalidArgument):
        await loopback.check_url("http://169.254.169.254/")


async def test_public_address_passes() -> None:
    await RULES.check_url("http://8.8.8.8/mcp")  # a literal address: no DNS needed, and no connection is made
