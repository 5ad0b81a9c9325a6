"""Server-sent events: the ``data`` of each event from a stream of lines."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator


async def events(lines: AsyncIterator[str]) -> AsyncGenerator[str, None]:
    """Yield each event's data (multi-line data joined with newlines); comments are skipped."""
    data: list[str] = []
    async for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)
