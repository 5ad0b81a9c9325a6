"""The API key store: digests only, rotation with a grace period, revocation,
expiry; a replica's key ring follows the file within its refresh interval."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from gateway import local_keys
from gateway.key_ring import KeyRing
from gateway.key_store import KeyStore, KeyStoreError, split_key
from runtime import credentials
from runtime.errors import Unauthenticated
from tests.gateway.clock import FakeClock

NOW = 1_900_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> KeyStore:
    return KeyStore(tmp_path / "api_keys.json", clock=clock)


def ring_of(store: KeyStore, clock: FakeClock, *, refresh_s: float = 2.0) -> KeyRing:
    return KeyRing.load(store.path, refresh_s=refresh_s, clock=clock, monotonic=clock)


def reason(ring: KeyRing, key: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        ring.principal(key)
    return caught.value.reason


def test_the_store_holds_no_plaintext_and_only_its_owner_reads_it(store: KeyStore) -> None:
    issued = store.create(tenant_id="acme-retail", name="ops")
    key_id, secret = split_key(issued.api_key) or ("", "")
    assert key_id == issued.record.key_id
    text = store.path.read_text()
    assert issued.api_key not in text
    assert secret not in text
    assert secret[:16] not in text
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    entry = json.loads(text)["keys"][0]
    assert set(entry) >= {"key_id", "tenant_id", "team_id", "role", "sha256", "created_at"}
    assert entry["created_at"].endswith("Z")


def test_a_key_authenticates_as_its_principal(store: KeyStore, clock: FakeClock) -> None:
    issued = store.create(tenant_id="acme-retail", team_id="billing", role="admin")
    principal = ring_of(store, clock).principal(issued.api_key)
    assert (principal.tenant_id, principal.team_id, principal.role) == (
        "acme-retail",
        "billing",
        "admin",
    )
    assert principal.principal_id == f"key:{issued.record.key_id}"
    assert principal.user_id == ""


def test_a_wrong_secret_or_unknown_id_is_invalid(store: KeyStore, clock: FakeClock) -> None:
    issued = store.create(tenant_id="acme-retail")
    ring = ring_of(store, clock)
    last = "A" if issued.api_key[-1] != "A" else "B"
    assert reason(ring, issued.api_key[:-1] + last) == "INVALID_CREDENTIAL"
    assert reason(ring, "wb_0123456789abcdef_" + "x" * 43) == "INVALID_CREDENTIAL"
    assert reason(ring, "not a key") == "INVALID_CREDENTIAL"


def test_rotation_keeps_both_keys_until_the_grace_expiry(store: KeyStore, clock: FakeClock) -> None:
    old = store.create(tenant_id="acme-retail")
    ring = ring_of(store, clock)
    new = store.rotate(old.record.key_id, grace_s=600)
    clock.advance(2.0)  # one refresh interval
    assert ring.principal(old.api_key).tenant_id == "acme-retail"
    assert ring.principal(new.api_key).tenant_id == "acme-retail"
    clock.advance(600 - 2.0 - 1)
    assert ring.principal(old.api_key).tenant_id == "acme-retail"
    clock.advance(1)
    assert reason(ring, old.api_key) == "EXPIRED_CREDENTIAL"
    assert ring.principal(new.api_key).tenant_id == "acme-retail"
    replaced = {r.key_id: r for r in store.records()}[old.record.key_id]
    assert replaced.replaced_by == new.record.key_id
    with pytest.raises(KeyStoreError, match="expired"):
        store.rotate(old.record.key_id, grace_s=60)


def test_a_rotated_key_keeps_an_earlier_expiry_of_its_own(
    store: KeyStore, clock: FakeClock
) -> None:
    old = store.create(tenant_id="acme-retail", expires_in_s=100)
    new = store.rotate(old.record.key_id, grace_s=3600)
    records = {r.key_id: r for r in store.records()}
    assert records[old.record.key_id].expires_at == NOW + 100
    assert records[new.record.key_id].expires_at == NOW + 100  # the same lifetime, from now


def test_revocation_reaches_the_ring_within_its_refresh_interval(
    store: KeyStore, clock: FakeClock
) -> None:
    issued = store.create(tenant_id="acme-retail")
    ring = ring_of(store, clock, refresh_s=2.0)
    assert ring.principal(issued.api_key)
    store.revoke(issued.record.key_id)
    clock.advance(2.0)
    assert reason(ring, issued.api_key) == "REVOKED_CREDENTIAL"
    with pytest.raises(KeyStoreError, match="already revoked"):
        store.revoke(issued.record.key_id)
    with pytest.raises(KeyStoreError, match="no key"):
        store.revoke("0123456789abcdef")


def test_expiry(store: KeyStore, clock: FakeClock) -> None:
    issued = store.create(tenant_id="acme-retail", expires_in_s=60)
    ring = ring_of(store, clock)
    assert ring.principal(issued.api_key)
    clock.advance(60)
    assert reason(ring, issued.api_key) == "EXPIRED_CREDENTIAL"


def test_an_unreadable_store_keeps_the_keys_read_last(store: KeyStore, clock: FakeClock) -> None:
    issued = store.create(tenant_id="acme-retail")
    ring = ring_of(store, clock)
    store.path.write_text("{half a file")
    clock.advance(5)
    assert ring.principal(issued.api_key).tenant_id == "acme-retail"


def test_bad_input_is_refused(store: KeyStore) -> None:
    with pytest.raises(KeyStoreError):
        store.create(tenant_id="Acme Retail")
    with pytest.raises(KeyStoreError):
        store.create(tenant_id="acme-retail", role="customer")


def test_local_keys_are_made_once_and_replaced_when_they_stop_working(tmp_path: Path) -> None:
    store, clients = tmp_path / "api_keys.json", tmp_path / "credentials.json"
    tenants = ("acme-retail", "globex-home")
    first = local_keys.ensure(store=store, clients=clients, tenants=tenants)
    assert [k.principal.tenant_id for k in first] == list(tenants)
    assert stat.S_IMODE(clients.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    for key in first:
        assert key.api_key not in store.read_text()
        assert credentials.key_for(clients, key.principal.tenant_id) == key.api_key
    again = local_keys.ensure(store=store, clients=clients, tenants=tenants)
    assert [k.api_key for k in again] == [k.api_key for k in first]
    KeyStore(store).revoke(first[0].principal.principal_id.removeprefix("key:"))
    replaced = local_keys.ensure(store=store, clients=clients, tenants=tenants)
    assert replaced[0].api_key != first[0].api_key
    assert replaced[1].api_key == first[1].api_key
    assert credentials.key_for(clients, "acme-retail") == replaced[0].api_key


def test_an_old_plaintext_credentials_file_is_replaced(tmp_path: Path) -> None:
    clients = tmp_path / "credentials.json"
    clients.write_text(
        json.dumps({"keys": [{"api_key": "wb_acme-retail_old", "tenant_id": "acme-retail"}]})
    )
    keys = local_keys.ensure(
        store=tmp_path / "api_keys.json", clients=clients, tenants=("acme-retail",)
    )
    assert keys[0].api_key != "wb_acme-retail_old"
    assert split_key(keys[0].api_key) is not None
