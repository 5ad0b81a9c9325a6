"""The embedded exemplar store (a JSONL file) and the admin keys file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from router import admin_keys
from router.admin_keys import AdminKeys
from router.exemplars import Exemplar
from router.intents import I
from router.store import FileExemplarStore, RequestIdReused, StoredConflict
from runtime.errors import PermissionDenied, Unauthenticated

T = "acme-retail"


async def test_the_file_store_keeps_rows_and_answers_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "router" / "added.jsonl"
    store = FileExemplarStore(path)
    items = [Exemplar("crate at the dock", I.INTENT_TRACKING_STATUS)]
    first = await store.append(T, items, request_id="file-0001", fingerprint="f")
    reopened = FileExemplarStore(path)
    assert await reopened.append(T, items, request_id="file-0001", fingerprint="f") == first
    with pytest.raises(RequestIdReused):
        await reopened.append(T, items, request_id="file-0001", fingerprint="g")
    with pytest.raises(StoredConflict):
        await reopened.append(
            T,
            [Exemplar("Crate at the dock", I.INTENT_OTHER)],
            request_id="file-0002",
            fingerprint="h",
        )
    assert (await reopened.load_all()) == (await store.load_all())


async def test_old_lines_without_a_tenant_are_served_to_nobody_and_a_torn_line_is_dropped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "added.jsonl"
    legacy = json.dumps({"text": "old global one", "intent": "INTENT_OTHER"})
    path.write_text(legacy + "\n" + '{"seq": 1, "tenant_id": "acme-ret')
    store = FileExemplarStore(path)
    assert await store.load_all() == {}
    answer = await store.append(
        T, [Exemplar("new one", I.INTENT_OTHER)], request_id="file-0003", fingerprint="f"
    )
    assert answer.last_sequence == 1
    assert [r.exemplar.text for r in (await FileExemplarStore(path).load_all())[T]] == ["new one"]


def test_admin_keys_are_made_once_hashed_and_private(tmp_path: Path) -> None:
    hashed, plain = tmp_path / "hashes.json", tmp_path / "keys.json"
    admin_keys.generate(hashed=hashed, plain=plain, tenants=("acme-retail", "globex-home"))
    first = hashed.read_text()
    admin_keys.generate(hashed=hashed, plain=plain, tenants=("acme-retail", "globex-home"))
    assert hashed.read_text() == first
    for path in (hashed, plain):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = admin_keys.key_in(plain, "acme-retail")
    assert key not in first
    keys = AdminKeys.load(hashed)
    auth = (("authorization", f"Bearer {key}"),)
    assert keys.authorise(auth, "acme-retail").tenant_id == "acme-retail"
    with pytest.raises(PermissionDenied):
        keys.authorise(auth, "globex-home")


def test_a_changed_keys_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "hashes.json"
    path.write_text(json.dumps({"keys": []}))
    keys = AdminKeys.load(path)
    auth = (("authorization", "Bearer rotated-key"),)
    with pytest.raises(Unauthenticated):
        keys.authorise(auth, T)
    entry = {"tenant_id": T, "key_sha256": admin_keys.digest("rotated-key"), "name": "ops"}
    path.write_text(json.dumps({"keys": [entry]}) + "\n")
    assert keys.authorise(auth, T).name == "ops"


def test_a_bad_keys_file_fails_at_load(tmp_path: Path) -> None:
    path = tmp_path / "hashes.json"
    path.write_text(json.dumps({"keys": [{"tenant_id": T, "key_sha256": "plaintext!"}]}))
    with pytest.raises(ValueError, match="key_sha256"):
        AdminKeys.load(path)
