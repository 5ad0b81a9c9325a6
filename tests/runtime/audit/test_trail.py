"""The gateway's handle: pseudonyms, append, close; defaults under $WAYBILL_DATA_DIR."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from runtime.audit.trail import AuditTrail
from runtime.audit.verify import verify
from tests.runtime.audit.logs import record


async def test_a_turn_through_the_trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYBILL_DATA_DIR", str(tmp_path))
    trail = AuditTrail.open()
    names = trail.pseudonyms("acme-retail", "cust-0042", "sess-9")
    assert names.user.startswith("u_")
    assert names.session.startswith("s_")
    assert trail.pseudonyms("acme-retail", "") == dataclasses.replace(names, user="", session="")
    trail.append(record(1, user=names.user, session=names.session))
    await trail.aclose()
    assert (tmp_path / "audit-keys" / "keys.sqlite3").is_file()
    result = verify(tmp_path / "audit")
    assert (result.ok, result.records) == (True, 1)
