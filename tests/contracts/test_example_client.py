"""The example client, run from a clean virtual environment holding only the
waybill-contracts wheel, against a real mesh: a turn's answer, a confirmed refund,
the rich errors of an invalid request and of a rate-limited turn."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from waybill.orders.v1 import orders_service_pb2 as orders
from waybill.orders.v1 import orders_service_pb2_grpc as orders_grpc

from cli.launcher import Mesh
from cli.ports import free_base_port
from runtime import mesh
from scripts import build_contracts
from tests.contracts.conftest import ContractsVenv
from tests.mesh.conftest import api_key
from tests.mesh.conversation import Chat, orders_where, refundable_without_a_person

pytestmark = [pytest.mark.mesh, pytest.mark.timeout(600)]

EXAMPLE = build_contracts.ROOT / "examples" / "order_status_client"
RETRY_AFTER_S = "0.2"
"""The RetryInfo delay of the gateway's injected RESOURCE_EXHAUSTED."""


@pytest.fixture(scope="module")
def fault_marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gateway fails one Converse with RESOURCE_EXHAUSTED + RetryInfo when this file
    is missing (it then creates it): present, so the fault waits for a test to arm it."""
    marker = tmp_path_factory.mktemp("faults") / "converse-fired"
    marker.touch()
    return marker


@pytest.fixture(scope="module")
def gateway_mesh(tmp_path_factory: pytest.TempPathFactory, fault_marker: Path) -> Iterator[Mesh]:
    faults = {
        "WAYBILL_FAULT_METHODS": "Converse",
        "WAYBILL_FAULT_STATUS": "RESOURCE_EXHAUSTED",
        "WAYBILL_FAULT_RETRY_AFTER_S": RETRY_AFTER_S,
        "WAYBILL_FAULT_ONCE_FILE": str(fault_marker),
    }
    with Mesh(
        run_dir=tmp_path_factory.mktemp("contracts-mesh"),
        base_port=free_base_port(len(mesh.SERVICES)),
        per_service_env={"gateway": faults},
    ) as started:
        yield started


def _platform_only_dependencies() -> set[str]:
    """Distributions the platform depends on and the contracts do not."""

    def names(requirements: list[str]) -> set[str]:
        found = {re.split(r"[\[<>=!~;\s]", r, maxsplit=1)[0] for r in requirements}
        return {re.sub(r"[-_.]+", "-", n).lower() for n in found}

    platform = tomllib.loads((build_contracts.ROOT / "pyproject.toml").read_text())["project"]
    contracts = tomllib.loads(
        (build_contracts.ROOT / build_contracts.PROJECT / "pyproject.toml").read_text()
    )["project"]
    own = names(contracts["dependencies"]) | names(contracts["optional-dependencies"]["validate"])
    return names(platform["dependencies"]) - own


def _client(
    cv: ContractsVenv, m: Mesh, *args: str, tenant: str = "acme-retail"
) -> subprocess.CompletedProcess[str]:
    return cv.run(
        "-m",
        "order_status_client",
        "--target",
        m.addresses["gateway"],
        *args,
        cwd=EXAMPLE,
        env={"WAYBILL_API_KEY": api_key(m, tenant)},
    )


def test_the_wheel_holds_the_contracts_and_nothing_of_the_platform(
    contracts_venv: ContractsVenv, tmp_path: Path
) -> None:
    print(f"wheel and clean venv ready in {contracts_venv.setup_s:.1f}s")
    generated = sorted(
        ".".join(p.relative_to(build_contracts.ROOT / "gen").with_suffix("").parts)
        for p in (build_contracts.ROOT / "gen").rglob("*.py")
    )
    probe = """
import importlib, importlib.metadata as md, importlib.resources as res, json, sys
for module in sys.argv[1:]:
    importlib.import_module(module)
missing = []
for name in ("gateway", "runtime", "cli", "orders", "router"):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        missing.append(name)
import buf.validate.validate_pb2
from waybill.gateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc
from waybill.ledger.v1 import ledger_service_pb2_grpc
import google.rpc.error_details_pb2, grpc_status, protovalidate
v1 = res.files("waybill.gateway.v1")
print(json.dumps({
    "missing": missing,
    "dists": sorted(d.metadata["Name"].lower() for d in md.distributions()),
    "version": md.version("waybill-contracts"),
    "proto": "ConverseRequest" in (v1 / "gateway_service.proto").read_text(),
    "validate_proto": (res.files("buf.validate") / "validate.proto").is_file(),
    "pyi": (v1 / "gateway_service_pb2.pyi").is_file(),
    "typed": (v1 / "py.typed").is_file(),
}))
"""
    result = contracts_venv.run("-c", probe, *generated, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["missing"] == ["gateway", "runtime", "cli", "orders", "router"]
    assert "waybill" not in found["dists"]
    installed = {re.sub(r"[-_.]+", "-", name) for name in found["dists"]}
    assert not _platform_only_dependencies() & installed
    assert "waybill-contracts" in found["dists"]
    assert found["version"] == build_contracts.read_version()
    for packaged in ("proto", "validate_proto", "pyi", "typed"):
        assert found[packaged], packaged


def test_a_turn_streams_the_answer(contracts_venv: ContractsVenv, gateway_mesh: Mesh) -> None:
    with grpc.insecure_channel(gateway_mesh.addresses["orders"]) as ch:
        active = orders_grpc.OrdersServiceStub(ch).ListActiveOrders(
            orders.ListActiveOrdersRequest(tenant_id="acme-retail", user_id="acme-0001"),
            timeout=5,
        )
    (only,) = active.orders
    result = _client(
        contracts_venv,
        gateway_mesh,
        "--user",
        "acme-0001",
        "--session",
        "session-example-1",
        "where is my order?",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "[tool] get_order_status" in lines
    (final,) = [line for line in lines if line.startswith("[final] ")]
    assert only.awb in final
    # The streamed text, then the final answer repeating it.
    assert final.removeprefix("[final] ") in result.stdout.split("[final] ")[0]


def test_a_proposed_refund_is_confirmed_once(
    contracts_venv: ContractsVenv, gateway_mesh: Mesh
) -> None:
    order = next(orders_where(refundable_without_a_person))
    chat = Chat(gateway_mesh, order, "session-example-refund")
    result = _client(
        contracts_venv,
        gateway_mesh,
        "--user",
        order.user_id,
        "--session",
        chat.session,
        "--confirm",
        f"Order {order.order_id} never arrived, please refund it",
        tenant=chat.tenant,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    (proposed,) = [line for line in out.splitlines() if line.startswith("[proposed] act_")]
    assert order.order_id in proposed
    assert any(
        line.startswith("[confirm] act_") and " idempotency_key=" in line
        for line in out.splitlines()
    )
    # The proposing turn ends with its own final answer, then the confirmation's.
    proposal, done = [line for line in out.splitlines() if line.startswith("[final] ")]
    assert order.order_id in proposal
    assert "Done: I've refunded" in done
    assert chat.refunded() == order.total.minor_units


def test_an_invalid_request_is_explained_by_its_rule(
    contracts_venv: ContractsVenv, gateway_mesh: Mesh
) -> None:
    result = _client(
        contracts_venv, gateway_mesh, "--user", "acme-0001", "--session", "bad id!", "hi"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    err = result.stderr.splitlines()
    assert err[0].startswith("[error] INVALID_ARGUMENT: ")
    assert "[error] reason=VALIDATION_FAILED domain=gateway.waybill" in err
    assert "[error] metadata rule_ids=string.pattern" in err
    assert any(line.startswith("[error] violation session_id [string.pattern]: ") for line in err)
    assert not any(line.startswith("[error] retry after") for line in err)


def test_the_contract_rules_are_checked_before_sending(contracts_venv: ContractsVenv) -> None:
    # Nothing listens at the target: the request never leaves the client.
    result = contracts_venv.run(
        "-m",
        "order_status_client",
        "--target",
        "127.0.0.1:9",
        "--user",
        "Not A User",
        "--session",
        "bad id!",
        "--validate-locally",
        "hi",
        cwd=EXAMPLE,
        env={"WAYBILL_API_KEY": "unused"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    rules = sorted(line.split(" [")[0] for line in result.stderr.splitlines())
    assert rules == ["[invalid] session_id", "[invalid] user_id"]
    assert "[string.pattern]" in result.stderr


def test_a_rate_limited_turn_is_retried_after_the_retry_info_delay(
    contracts_venv: ContractsVenv, gateway_mesh: Mesh, fault_marker: Path
) -> None:
    fault_marker.unlink()  # arm: the next Converse fails once
    result = _client(
        contracts_venv,
        gateway_mesh,
        "--user",
        "acme-0001",
        "--session",
        "session-example-2",
        "where is my order?",
    )
    assert fault_marker.exists(), "the injected fault did not fire"
    assert result.returncode == 0, result.stdout + result.stderr
    err = result.stderr.splitlines()
    assert err[0].startswith("[error] RESOURCE_EXHAUSTED: ")
    assert "[error] reason=FAULT_INJECTED domain=gateway.waybill" in err
    assert f"[error] retry after {RETRY_AFTER_S}s" in err
    assert f"[retry] attempt 2 in {RETRY_AFTER_S}s" in err
    assert any(line.startswith("[final] ") for line in result.stdout.splitlines())
