import time

import pytest

from workers.coalesce import DeltaCoalescer


def test_sentences_are_sent_whole() -> None:
    c = DeltaCoalescer(max_wait_s=60)
    sent = [c.add(piece) for piece in ["Your order ", "is in ", "transit. ", "It is ", "expected "]]
    assert sent == [None, None, "Your order is in transit. ", None, None]
    assert c.flush() == "It is expected "
    assert c.flush() is None


def test_size_cap_flushes() -> None:
    c = DeltaCoalescer(max_wait_s=60, max_chars=10)
    assert c.add("abcdef") is None
    assert c.add("ghijk") == "abcdefghijk"


def test_old_text_is_not_held_back(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    c = DeltaCoalescer(max_wait_s=0.02)
    assert c.add("slow ") is None
    now[0] += 0.05
    assert c.add("tokens ") == "slow tokens "
