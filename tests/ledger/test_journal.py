"""The journal: concurrent appends share one flush, a caller is answered only once its
record is on disk, a torn last line is cut, a damaged line before the end is refused."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger import journal
from ledger.embedded_store import EmbeddedLedgerStore
from ledger.journal import Journal, JournalError, read
from tests.ledger.conftest import ask, priced


async def test_concurrent_appends_share_a_flush(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.start()

    async def one(i: int) -> None:
        journal.append({"op": "x", "i": i})
        await journal.synced()
        # Acknowledged: the record is in the file already.
        assert any(r["i"] == i for r in read(journal.path))

    await asyncio.gather(*(one(i) for i in range(200)))
    await journal.close()
    assert [r["i"] for r in read(journal.path)] == list(range(200))
    assert journal.batches < 20  # 200 records, a handful of flushes


async def test_synced_returns_at_once_when_nothing_is_pending(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.start()
    await asyncio.wait_for(journal.synced(), 1)
    await journal.close()


def test_a_torn_last_line_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"op":"a"}\n{"op":"b"}\n{"op":"c","i"')
    assert read(path) == [{"op": "a"}, {"op": "b"}]
    assert path.read_bytes() == b'{"op":"a"}\n{"op":"b"}\n'  # appends start on a clean line
    assert read(tmp_path / "missing.jsonl") == []


def test_a_damaged_line_before_the_end_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"op":"a"}\n{"op":\n{"op":"c"}\n')
    with pytest.raises(JournalError, match="line 2"):
        read(path)


async def test_a_torn_journal_replays_into_the_store(tmp_path: Path) -> None:
    store = await EmbeddedLedgerStore.open(tmp_path, default_limit=100, ttl_s=60)
    now = datetime(2026, 12, 7, tzinfo=UTC)
    await store.set_budget("acme-retail", "support", 5000, now=now)
    await store.close()
    path = tmp_path / "journal.jsonl"
    with path.open("ab") as fh:
        fh.write(json.dumps({"op": "budget", "t": "acme-retail", "tm": "support"}).encode()[:20])
    reopened = await EmbeddedLedgerStore.open(tmp_path, default_limit=100, ttl_s=60)
    assert (await reopened.budget("acme-retail", "support", now=now)).limit == 5000
    await reopened.set_budget("acme-retail", "support", 6000, now=now)
    await reopened.close()
    assert [r.get("l") for r in read(path)] == [5000, 6000]


async def test_flushes_run_on_the_loop_while_fast_and_in_a_thread_after_a_slow_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A generous threshold and a flush far slower than it: what a loaded machine adds to
    # a fast flush cannot reach the one, nor take from the other.
    monkeypatch.setattr(journal, "INLINE_FLUSH_S", 0.5)
    flushed_on: list[int] = []
    slow = {"next": False}

    def fdatasync(fd: int) -> None:
        flushed_on.append(threading.get_ident())
        if slow["next"]:
            slow["next"] = False
            time.sleep(0.6)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    log = Journal(tmp_path / "journal.jsonl")
    log.start()
    loop_thread = threading.get_ident()
    for i in range(3):
        slow["next"] = i == 1  # the second flush is slow: the third goes to a thread
        log.append({"i": i})
        await log.synced()
    await log.close()
    assert flushed_on[:2] == [loop_thread, loop_thread]
    assert flushed_on[2] != loop_thread
    assert log.inline_flushes == 2
    assert [r["i"] for r in read(tmp_path / "journal.jsonl")] == [0, 1, 2]


async def test_a_hold_is_answered_before_its_flush_and_a_charge_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()

    def fdatasync(fd: int) -> None:
        gate.wait(5)  # the disk answers only when the test says so

    store = await EmbeddedLedgerStore.open(tmp_path, default_limit=1_000_000, ttl_s=60)
    monkeypatch.setattr(journal, "INLINE_FLUSH_S", 0.0)  # every flush in a thread
    monkeypatch.setattr(os, "fdatasync", fdatasync)
    now = datetime(2026, 12, 7, tzinfo=UTC)
    try:
        held = await asyncio.wait_for(store.reserve(ask("turn-0001", estimate=500), now=now), 1)
        charging = asyncio.ensure_future(
            store.commit("acme-retail", held.reservation_id, priced(100), now=now)
        )
        await asyncio.sleep(0.2)
        assert not charging.done()  # the charge waits for the disk
        gate.set()
        done = await asyncio.wait_for(charging, 5)
        assert done.charged == 100
    finally:
        gate.set()
        await store.close()
    ops = [r["op"] for r in read(tmp_path / "journal.jsonl")]
    assert ops == ["reserve", "commit"]


async def test_a_record_no_one_waits_on_goes_with_the_next_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "LAZY_FLUSH_S", 0.3)
    log = Journal(tmp_path / "j.jsonl")
    log.start()
    try:
        log.append({"i": 0}, urgent=False)
        await asyncio.sleep(0.1)
        assert log.batches == 0  # no flush for it alone...
        log.append({"i": 1})
        await asyncio.wait_for(log.synced(), 1)
        assert log.batches == 1  # ...it went with the next one
        assert [r["i"] for r in read(log.path)] == [0, 1]

        log.append({"i": 2}, urgent=False)
        await asyncio.sleep(0.6)  # nothing else came: flushed on its own, late
        assert log.batches == 2
        assert [r["i"] for r in read(log.path)] == [0, 1, 2]

        log.append({"i": 3}, urgent=False)
        await asyncio.wait_for(log.synced(), 0.2)  # waiting on it flushes it at once
        assert [r["i"] for r in read(log.path)] == [0, 1, 2, 3]
    finally:
        await log.close()


async def test_a_turn_at_a_turns_pace_costs_one_flush(tmp_path: Path) -> None:
    store = await EmbeddedLedgerStore.open(tmp_path, default_limit=10**9, ttl_s=60)
    now = datetime(2026, 12, 7, tzinfo=UTC)
    try:
        for n in range(20):
            held = await store.reserve(ask(f"turn-{n:04d}", estimate=500), now=now)
            await asyncio.sleep(0.005)  # the turn runs
            await store.commit("acme-retail", held.reservation_id, priced(100), now=now)
        assert store.journal.batches == 20  # the hold rode with its commit every time
    finally:
        await store.close()
    assert [r["op"] for r in read(tmp_path / "journal.jsonl")] == ["reserve", "commit"] * 20
