"""deploy/ matches the topology: CloudFormation (cfn-lint clean), the Dockerfile's targets and the compose file."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import cfn_yaml

from services.runtime import topology
from services.runtime.config import Config
from services.runtime.dynamodb import TTL
from services.runtime.mesh import target

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
TEMPLATES = sorted((DEPLOY / "cloudformation").glob("*.yaml"))
TEMPLATE = cfn_yaml.load(str(DEPLOY / "cloudformation" / "mcpmesh.yaml"))
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
SERVICES_SOURCE = Path(__file__).resolve().parents[2] / "services"
# Every MCPMESH_* variable the services know: the Config fields, and those documented where their adapter is chosen.
SETTINGS = {name for name, _ in Config.describe()} | {
    name for path in SERVICES_SOURCE.rglob("*.py") for name in re.findall(r"\b(MCPMESH_[A-Z_]+)\b", path.read_text())
}


def _resource(service: str, kind: str) -> dict[str, Any]:
    return RESOURCES[f"{service.capitalize()}{kind}"]["Properties"]


def _container(service: str) -> dict[str, Any]:
    [container] = [c for c in _resource(service, "Task")["ContainerDefinitions"] if c["Name"] == service]
    return container


def _environment(container: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def _policies(service: str) -> list[dict[str, Any]]:
    scaling_target = f"{service.capitalize()}Scaling"
    return [
        r["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy" and r["Properties"]["ScalingTargetId"] == {"Ref": scaling_target}
    ]


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_passes(template: Path) -> None:
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or "cfn-lint"
    done = subprocess.run([cfn_lint, str(template)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_namespace_and_every_service_is_in_the_template() -> None:
    assert RESOURCES["Namespace"]["Properties"]["Name"] == topology.NAMESPACE
    services = {r["Properties"]["ServiceName"] for r in RESOURCES.values() if r["Type"] == "AWS::ECS::Service"}
    assert services == {*topology.NAMES, "edge"}


@pytest.mark.parametrize("service", topology.SERVICES, ids=lambda s: s.name)
def test_task_size_ports_and_environment_follow_the_topology(service: topology.Service) -> None:
    task = _resource(service.name, "Task")
    assert (task["Cpu"], task["Memory"]) == (str(service.cpu_units), str(service.memory_mib))
    container = _container(service.name)
    ports = {m["Name"]: m["ContainerPort"] for m in container["PortMappings"]}
    assert ports["grpc"] == service.port
    if service.http_port:
        assert ports["websocket"] == service.http_port
    env = _environment(container)
    assert set(env) <= SETTINGS, set(env) - SETTINGS  # every variable is a real setting
    assert env["MCPMESH_PORT"] == str(service.port)
    for callee in topology.NAMES:  # the mesh address names each service as Service Connect publishes it
        assert target(env["MCPMESH_MESH_ADDRESS"], callee) == f"{topology.service(callee).host}:{topology.service(callee).port}"
    assert env["MCPMESH_EMF_NAMESPACE"] and env["MCPMESH_OTLP_ENDPOINT"]
    if service.http_port:
        assert env["MCPMESH_WS_PORT"] == str(service.http_port)


@pytest.mark.parametrize("service", topology.SERVICES, ids=lambda s: s.name)
def test_service_connect_publishes_the_topology_names(service: topology.Service) -> None:
    connect = _resource(service.name, "Service")["ServiceConnectConfiguration"]
    published = {(a["DnsName"], a["Port"]) for s in connect["Services"] for a in s["ClientAliases"]}
    assert (service.host, service.port) in published
    if service.http_port:  # the edge's gateway_ws cluster dials the same name on the WebSocket port
        assert (service.host, service.http_port) in published


@pytest.mark.parametrize("service", topology.SERVICES, ids=lambda s: s.name)
def test_scaling_figures_follow_the_topology(service: topology.Service) -> None:
    scaling = service.scaling
    target_props = _resource(service.name, "Scaling")
    assert (target_props["MinCapacity"], target_props["MaxCapacity"]) == (scaling.min_tasks, scaling.max_tasks)
    assert _resource(service.name, "Service")["DesiredCount"] == scaling.min_tasks
    found: dict[str, float] = {}
    for policy in _policies(service.name):
        if "PredefinedMetricSpecification" in policy:
            found[policy["PredefinedMetricSpecification"]["PredefinedMetricType"]] = policy["TargetValue"]
        else:
            metric = policy["CustomizedMetricSpecification"]
            assert metric["Namespace"] == "mcpmesh" and metric["Dimensions"] == [{"Name": "Service", "Value": service.name}]
            found[metric["MetricName"]] = policy["TargetValue"]
    wanted: dict[str, float] = dict(scaling.custom)
    if scaling.cpu_percent is not None:
        wanted["ECSServiceAverageCPUUtilization"] = scaling.cpu_percent
    if scaling.memory_percent is not None:
        wanted["ECSServiceAverageMemoryUtilization"] = scaling.memory_percent
    if scaling.requests_per_target is not None:
        wanted["Requests"] = scaling.requests_per_target
    if scaling.latency_ms is not None:
        wanted["Latency"] = scaling.latency_ms
    assert found == wanted


def test_custom_scaling_metrics_are_ones_the_services_emit() -> None:
    emitted = {"Requests", "Errors", "Latency"} | {m for s in topology.SERVICES for m in s.metrics}
    for service in topology.SERVICES:
        assert {name for name, _ in service.scaling.custom} <= emitted


DOCKERFILE = (DEPLOY / "Dockerfile").read_text()


def _stage(name: str) -> str:
    match = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", DOCKERFILE, re.M | re.S)
    assert match, f"no {name} target"
    return match.group(1)


@pytest.mark.parametrize("service", topology.SERVICES, ids=lambda s: s.name)
def test_dockerfile_has_a_target_per_service(service: topology.Service) -> None:
    stage = _stage(service.name)
    assert f'CMD ["python", "-m", "services.{service.name}"]' in stage
    assert str(service.port) in re.search(r"^EXPOSE (.*)$", stage, re.M).group(1).split()  # type: ignore[union-attr]


def test_dockerfile_images_run_as_a_non_root_user() -> None:
    assert "USER 10001" in _stage("service") and "USER 10001" in _stage("envoy")
    assert 'CMD ["python", "-m", "services.launcher.edge"]' in _stage("envoy")
    assert f"EXPOSE {topology.EDGE_PORT} {topology.EDGE_HTTPS_PORT}" in _stage("envoy")


def test_compose_follows_the_topology() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {*topology.NAMES, "edge"}
    assert services["edge"]["build"]["target"] == "envoy"
    assert services["edge"]["environment"]["MCPMESH_DNS_SUFFIX"] == ""
    for service in topology.SERVICES:
        entry = services[service.name]
        assert entry["build"]["target"] == service.name
        env = entry["environment"]
        assert set(env) <= SETTINGS, set(env) - SETTINGS
        assert env["MCPMESH_PORT"] == str(service.port)
        assert env["MCPMESH_MESH_ADDRESS"] == f"edge:{topology.MESH_PORT}"


# The DynamoDB adapters of each service (MCPMESH_STATE_URL=dynamodb://STACK): the template makes their tables.
# Every instance publishes its health report in the shared registry (services/runtime/instance_reports.py).
REGISTRY = "services.runtime.instance_reports_dynamodb"
ADAPTERS = {
    "gateway": ["services.gateway.api_keys_dynamodb", REGISTRY],
    "agents": ["services.agents.runs_dynamodb", "services.agents.knowledge.store_dynamodb", REGISTRY],
    "tools": ["services.tools.permissions_dynamodb", "services.tools.registry_store_dynamodb", REGISTRY],
    "workflows": ["services.workflows.store_dynamodb", REGISTRY],
}
# boto3 calls an adapter makes, as IAM actions; a transaction's items are checked as the item writes.
CALLS = {"get_item": ["GetItem"], "batch_get_item": ["BatchGetItem"], "put_item": ["PutItem"], "update_item": ["UpdateItem"],
         "delete_item": ["DeleteItem"], "batch_write_item": ["BatchWriteItem"], "query": ["Query"], "scan": ["Scan"],
         "describe_table": ["DescribeTable"],
         "transact_write_items": ["PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"]}


def _adapter_tables(service: str) -> list[dict[str, Any]]:
    return [d for name in ADAPTERS[service] for d in importlib.import_module(name).table_definitions("STACK")]


def _template_tables() -> dict[str, tuple[str, dict[str, Any]]]:
    """Table name suffix -> (resource name, properties)."""
    found = {}
    for name, resource in RESOURCES.items():
        if resource["Type"] == "AWS::DynamoDB::Table":
            table = resource["Properties"]["TableName"]["Fn::Sub"]
            assert table.startswith("${AWS::StackName}-"), name
            found[table.removeprefix("${AWS::StackName}-")] = (name, resource["Properties"])
    return found


def test_every_dynamodb_adapter_is_listed_here() -> None:
    modules = {".".join(path.relative_to(SERVICES_SOURCE.parent).with_suffix("").parts)
               for path in SERVICES_SOURCE.rglob("*.py") if "def table_definitions(" in path.read_text()}
    assert modules == {m for names in ADAPTERS.values() for m in names}


@pytest.mark.parametrize("service", sorted(ADAPTERS))
def test_template_tables_are_the_adapters_tables(service: str) -> None:
    template = _template_tables()
    for definition in _adapter_tables(service):
        suffix = definition["TableName"].removeprefix("STACK-")
        assert suffix in template, f"{service}: the template has no table {suffix}"
        _, table = template[suffix]
        assert table["KeySchema"] == definition["KeySchema"], suffix
        assert sorted(map(str, table["AttributeDefinitions"])) == sorted(map(str, definition["AttributeDefinitions"])), suffix
        assert [(i["IndexName"], i["KeySchema"]) for i in table.get("GlobalSecondaryIndexes", [])] == [
            (i["IndexName"], i["KeySchema"]) for i in definition.get("GlobalSecondaryIndexes", [])], suffix
        ttl = table.get("TimeToLiveSpecification", {}).get("AttributeName")
        assert ttl == definition.get(TTL), suffix
        assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_the_template_makes_no_table_no_adapter_uses() -> None:
    used = {d["TableName"].removeprefix("STACK-") for service in ADAPTERS for d in _adapter_tables(service)}
    assert set(_template_tables()) == used


@pytest.mark.parametrize("service", sorted(ADAPTERS))
def test_task_role_reaches_only_its_own_tables_with_the_calls_its_adapters_make(service: str) -> None:
    template = _template_tables()
    own = {template[d["TableName"].removeprefix("STACK-")][0] for d in _adapter_tables(service)}
    policy = RESOURCES[f"{service.capitalize()}TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    statements = [s for s in policy["Statement"] if "Action" in s and any(
        str(a).startswith("dynamodb:") for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))]
    assert len(statements) == 1, service
    [statement] = statements
    reached = {r["Fn::GetAtt"][0] for r in statement["Resource"] if "Fn::GetAtt" in r}
    assert reached == own
    sources = [Path(importlib.import_module(m).__file__ or "").read_text() for m in ADAPTERS[service]]
    sources.append((SERVICES_SOURCE / "runtime" / "dynamodb.py").read_text())  # the shared helpers they call
    called = {c for text in sources for c in re.findall(r"client\.([a-z_]+)\(", text)}
    called |= {c for text in sources for c in re.findall(r"get_paginator\(\"([a-z_]+)\"\)", text)}
    needed = {f"dynamodb:{action}" for call in called & set(CALLS) for action in CALLS[call]}
    assert needed <= set(statement["Action"]), needed - set(statement["Action"])
    assert not {a for a in statement["Action"] if a in ("dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:*")}


def test_gateway_gets_its_first_admin_key_from_a_secret() -> None:
    secrets = {s["Name"]: s["ValueFrom"] for s in _container("gateway").get("Secrets", [])}
    assert secrets["MCPMESH_BOOTSTRAP_ADMIN_KEY"] == {"Ref": "AdminKeySecretArn"}


@pytest.mark.parametrize("service", topology.NAMES)
def test_every_service_shares_its_rate_limit_budgets_in_redis(service: str) -> None:
    """Tasks scale out: an in-process budget would give each caller one budget per task."""
    value = _environment(_container(service))["MCPMESH_RATE_LIMIT_URL"]
    assert "rediss://${Cache.PrimaryEndPoint.Address}" in value["Fn::Sub"]


@pytest.mark.parametrize("service", topology.NAMES)
def test_every_service_reads_the_one_signing_key_ring(service: str) -> None:
    """Services verify the gateway's tokens and sign their own with the same ring; without the setting each task
    would make a ring of its own in its data folder and refuse every call."""
    assert _environment(_container(service))["MCPMESH_SIGNING_KEY"] == {
        "Fn::Sub": "secretsmanager://${SigningKey}?region=${AWS::Region}"}
    policy = RESOURCES[f"{service.capitalize()}TaskRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert any(s.get("Resource") == {"Ref": "SigningKey"} and "secretsmanager:GetSecretValue" in s["Action"]
               for s in policy["Statement"])
