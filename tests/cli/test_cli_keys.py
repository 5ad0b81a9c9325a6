"""``waybill keys``: create, list, rotate and revoke against a store, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from gateway.key_ring import KeyRing
from runtime.errors import Unauthenticated


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_keys_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "api_keys.json"
    code, out, err = run(
        capsys, "keys", "create", "--run-dir", str(tmp_path), "--tenant", "acme-retail"
    )
    assert code == 0, err
    key = out.strip()
    assert key.startswith("wb_")
    assert "shown once" in err
    assert key not in store.read_text()
    ring = KeyRing.load(store, refresh_s=0)
    assert ring.principal(key).tenant_id == "acme-retail"

    code, out, _ = run(capsys, "keys", "list", "--run-dir", str(tmp_path), "--json")
    assert code == 0
    assert key not in out
    (entry,) = json.loads(out)["keys"]
    assert entry["state"] == "active"
    assert entry["tenant_id"] == "acme-retail"
    key_id = entry["key_id"]
    code, table, _ = run(capsys, "keys", "list", "--store", str(store))
    assert code == 0
    assert key_id in table
    assert key not in table

    code, out, err = run(capsys, "keys", "rotate", key_id, "--store", str(store), "--grace", "60")
    assert code == 0, err
    new = out.strip()
    assert new != key
    assert new not in store.read_text()
    assert ring.principal(key).tenant_id == "acme-retail"  # both, during the grace period
    assert ring.principal(new).tenant_id == "acme-retail"

    code, out, _ = run(capsys, "keys", "revoke", key_id, "--store", str(store))
    assert code == 0
    assert key_id in out
    with pytest.raises(Unauthenticated):
        ring.principal(key)
    assert ring.principal(new).tenant_id == "acme-retail"

    code, _, err = run(capsys, "keys", "revoke", key_id, "--store", str(store))
    assert code == 1
    assert "already revoked" in err
    code, _, err = run(capsys, "keys", "rotate", "0123456789abcdef", "--store", str(store))
    assert code == 1
    assert "no key" in err
    code, out, _ = run(capsys, "keys", "list", "--store", str(store), "--json")
    states = {e["key_id"]: e["state"] for e in json.loads(out)["keys"]}
    assert states[key_id] == "revoked"


def test_keys_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["keys", "create", "--run-dir", str(tmp_path)])  # --tenant is required
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        main(["keys", "create", "--tenant", "acme-retail", "--role", "customer"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        main(["keys", "--help"])
    assert exited.value.code == 0
    assert "rotate" in capsys.readouterr().out
    code, _, err = run(
        capsys, "keys", "create", "--store", str(tmp_path / "s.json"), "--tenant", "Bad Name"
    )
    assert code == 1
    assert "error:" in err
