"""Helpers for servicers: the UNIMPLEMENTED answer for contracts not built yet."""

from __future__ import annotations

from runtime.errors import Unimplemented


def not_built(service: str, method: str, planned: str) -> Unimplemented:
    """An UNIMPLEMENTED error naming what is missing and where it is planned."""
    return Unimplemented(
        f"{service}.{method} is part of the contract but not implemented yet ({planned})",
        reason="NOT_IMPLEMENTED",
        metadata={"method": method},
    )
