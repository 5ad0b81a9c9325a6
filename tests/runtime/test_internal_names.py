"""What counts as naming the mesh's insides."""

from __future__ import annotations

import pytest

from runtime.internal_names import names_internals, public_message


@pytest.mark.parametrize(
    "text",
    [
        "only 0.0 ms left for /waybill.guardrails.v1.GuardrailsService/CheckInput",
        "GuardrailsService is down",
        "failed to connect to all addresses; last error: 127.0.0.1:50051",
        "connect to [::1]:50051 refused",
        "ipv4:10.0.0.7:443: Connection refused",
        "localhost:8080 refused",
        'Traceback (most recent call last):\n  File "x.py", line 3',
    ],
)
def test_internal_names_are_recognised(text: str) -> None:
    assert names_internals(text)
    assert public_message(text, fallback="plain") == "plain"


@pytest.mark.parametrize(
    "text",
    [
        "no such order for this customer",
        "invalid waybill.gateway.v1.ConverseRequest: message: value length must be at least 1",
        "the request ran out of time",
        "order ORD-20260001 was refunded: 12.34 USD",
        "service unavailable, try again in 2.5 s",
    ],
)
def test_public_text_passes(text: str) -> None:
    assert not names_internals(text)
    assert public_message(text, fallback="plain") == text
