"""Users as keyed pseudonyms; erasure makes their records unlinkable and keeps the chain."""

from __future__ import annotations

import json
from pathlib import Path

from runtime.audit.log import AuditLog
from runtime.audit.pseudonyms import PseudonymKeys
from runtime.audit.verify import verify
from tests.runtime.audit.logs import lines, record, segment

CUSTOMER = "cust-0042"
OTHER = "cust-0043"


def _users(path: Path) -> list[str]:
    return [json.loads(line)["record"]["user_pseudonym"] for line in lines(path)]


def test_pseudonyms_are_stable_per_customer_and_differ_across(tmp_path: Path) -> None:
    with PseudonymKeys(tmp_path / "keys.sqlite3") as keys:
        first = keys.user("acme", CUSTOMER)
        assert first == keys.user("acme", CUSTOMER)
        assert first.startswith("u_")
        assert len(first) == 34
        assert first != keys.user("acme", OTHER)
        assert first != keys.user("globex", CUSTOMER)
        assert keys.session("acme", CUSTOMER, "sess-1") != keys.session("acme", CUSTOMER, "sess-2")
    with PseudonymKeys(tmp_path / "keys.sqlite3") as reopened:
        assert reopened.known_user("acme", CUSTOMER) == first


def test_erasure_makes_records_unlinkable_and_verify_stays_green(tmp_path: Path) -> None:
    logs, key_file = tmp_path / "audit", tmp_path / "keys.sqlite3"
    with PseudonymKeys(key_file) as keys, AuditLog(logs) as log:
        for n in range(6):
            customer = CUSTOMER if n % 2 else OTHER
            log.append(
                record(
                    n,
                    user=keys.user("acme", customer),
                    session=keys.session("acme", customer, f"sess-{customer}"),
                )
            )
        log.flush(timeout_s=10)
        theirs = keys.user("acme", CUSTOMER)
        assert _users(segment(logs)).count(theirs) == 3
        secret = keys._secret("acme", CUSTOMER, create=False)
        assert secret is not None

        assert keys.erase("acme", CUSTOMER)
        assert keys.known_user("acme", CUSTOMER) is None
        assert not keys.erase("acme", CUSTOMER)
        # Seen again, the customer is someone new: nothing links them to the old records.
        assert keys.user("acme", CUSTOMER) not in _users(segment(logs))
        assert keys.known_user("acme", OTHER) in _users(segment(logs))

    assert verify(logs).ok
    assert theirs in _users(segment(logs))  # the records stay, under a pseudonym nobody can map
    for path in key_file.parent.glob("keys.sqlite3*"):
        assert secret not in path.read_bytes()


def test_customer_ids_never_reach_any_file(tmp_path: Path) -> None:
    logs, key_file = tmp_path / "audit", tmp_path / "keys" / "keys.sqlite3"
    with PseudonymKeys(key_file) as keys, AuditLog(logs) as log:
        for n in range(20):
            log.append(
                record(
                    n,
                    user=keys.user("acme", CUSTOMER),
                    session=keys.session("acme", CUSTOMER, "sess-77f1"),
                )
            )
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.parent == logs for p in files)
    assert any(p.parent == key_file.parent for p in files)
    for path in files:
        content = path.read_bytes()
        assert CUSTOMER.encode() not in content, path
        assert b"sess-77f1" not in content, path
