"""Port allocation and the addresses and environment a Mesh gives its children."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from cli.launcher import REPO_ROOT, Mesh, free_base_port
from cli.ports import ports_free
from runtime import mesh


def test_free_base_port_returns_a_bindable_run() -> None:
    count = len(mesh.SERVICES)
    base = free_base_port(count)
    assert base >= 1024
    assert ports_free(base, count)


def test_free_base_port_rejects_an_empty_run() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        free_base_port(0)


def test_ports_free_sees_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not ports_free(port, 1)
        assert not ports_free(port - 1, 2)


def test_base_port_gives_service_i_base_plus_i(tmp_path: Path) -> None:
    m = Mesh(run_dir=tmp_path, base_port=30000)
    assert m.addresses == {s.name: f"127.0.0.1:{30000 + i}" for i, s in enumerate(mesh.SERVICES)}


def test_default_ports_come_from_the_mesh_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for s in mesh.SERVICES:
        monkeypatch.delenv(s.env_var, raising=False)
    m = Mesh(run_dir=tmp_path)
    assert m.addresses == {s.name: f"127.0.0.1:{s.default_port}" for s in mesh.SERVICES}


def test_env_address_overrides_base_port(tmp_path: Path) -> None:
    m = Mesh(run_dir=tmp_path, base_port=30000, env={"WAYBILL_ORDERS_ADDR": "127.0.0.1:31999"})
    assert m.addresses["orders"] == "127.0.0.1:31999"
    assert m.addresses["ledger"] == "127.0.0.1:30001"


def test_subset_keeps_start_order(tmp_path: Path) -> None:
    m = Mesh(run_dir=tmp_path, services=["gateway", "tracking", "orders"])
    assert m.names == ["orders", "tracking", "gateway"]
    assert set(m.addresses) == set(mesh.BY_NAME)


def test_unknown_service_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown service"):
        Mesh(run_dir=tmp_path, services=["nope"])


def test_child_env(tmp_path: Path) -> None:
    m = Mesh(
        run_dir=tmp_path,
        base_port=30000,
        env={"PYTHONPATH": "/extra", "WAYBILL_LOG_LEVEL": "DEBUG"},
        per_service_env={
            "gateway": {"WAYBILL_ORDERS_ADDR": "127.0.0.1:1", "WAYBILL_GATEWAY_ADDR": "x:1"}
        },
    )
    env = m.child_env("gateway")
    # Every service's address, except where this child was deliberately pointed elsewhere.
    assert env["WAYBILL_LEDGER_ADDR"] == "127.0.0.1:30001"
    assert env["WAYBILL_ORDERS_ADDR"] == "127.0.0.1:1"
    # Its own address is always the one readiness probes.
    assert env["WAYBILL_GATEWAY_ADDR"] == m.addresses["gateway"]
    # The gateway gets the hashed key store and the demo token issuer, never plaintext keys.
    assert env["WAYBILL_API_KEYS_FILE"] == str(tmp_path / "api_keys.json")
    assert env["WAYBILL_JWT_JWKS_FILE"] == str(tmp_path / "demo-token-jwks.json")
    assert env["WAYBILL_JWT_ISSUER"]
    assert env["WAYBILL_JWT_AUDIENCE"]
    assert env.get("WAYBILL_CREDENTIALS_FILE") == os.environ.get("WAYBILL_CREDENTIALS_FILE")
    assert "WAYBILL_EDGE_DEMO_SIGNING_KEY" not in env
    assert env["WAYBILL_DATA_DIR"] == str(tmp_path / "data")
    assert env["WAYBILL_LOG_LEVEL"] == "DEBUG"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONPATH"].split(os.pathsep) == [
        str(REPO_ROOT),
        str(REPO_ROOT / "gen"),
        "/extra",
    ]
    assert m.child_env("orders")["WAYBILL_ORDERS_ADDR"] == "127.0.0.1:30000"
    assert m.log_path("orders") == tmp_path / "logs" / "orders.log"
