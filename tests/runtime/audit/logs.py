"""Factories of audit records and logs for the tests, and ways to tamper with them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from runtime.audit.log import AuditLog
from runtime.audit.record import AuditRecord, GuardrailVerdict, ToolCall
from runtime.audit.segments import segment_files

DAY0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def record(n: int, *, at: datetime = DAY0, user: str = "", session: str = "") -> AuditRecord:
    """A plausible turn's record, distinct per ``n``."""
    return AuditRecord(
        time=at + timedelta(seconds=n),
        request_id=f"req-{n:06d}",
        tenant_id="acme-retail",
        team_id="support",
        principal_id="key-7f3a",
        user_pseudonym=user,
        session_pseudonym=session,
        intent="INTENT_TRACKING",
        worker="tracking",
        tools=(ToolCall("get_order_status", "OK"), ToolCall("get_eta", "NOT_FOUND")),
        models=("composer/templates",),
        input_tokens=100 + n,
        output_tokens=20,
        cost_micro_units=350,
        currency_code="USD",
        latency_us=12_500,
        guardrails=(
            GuardrailVerdict("input_pii", "redact"),
            GuardrailVerdict("injection", "allow"),
        ),
        cache_hit=n % 5 == 0,
        budget_state="ok",
        outcome="OK",
    )


def write_log(directory: Path, *, days: int = 1, per_day: int = 10) -> int:
    """A log of ``days`` UTC days from DAY0 with ``per_day`` records each; the record count."""
    n = 0
    with AuditLog(directory) as log:
        for day in range(days):
            for _ in range(per_day):
                log.append(record(n, at=DAY0 + timedelta(days=day)))
                n += 1
    return n


def segment(directory: Path, index: int = 0) -> Path:
    """The ``index``-th segment file, oldest first."""
    return segment_files(directory)[index]


def lines(path: Path) -> list[bytes]:
    """The file's lines, newlines kept."""
    return path.read_bytes().splitlines(keepends=True)


def rewrite(path: Path, new: list[bytes]) -> None:
    """Replace the file's lines."""
    path.write_bytes(b"".join(new))
