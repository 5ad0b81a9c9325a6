"""JSON log lines with trace and span ids; metadata only, never message content.

Every service's handler also carries ``RedactingFilter``: defence in depth for the day
a log line does carry text. It replaces anything the PII registry recognises
(``runtime.pii``: e-mails, cards, phones, IBANs, addresses, names after a context word)
with ``[REDACTED:ENTITY]`` in the message, its string extras and any traceback.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from opentelemetry import trace

from runtime import context
from runtime.pii import LightScanner, apply

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, service, logger, msg, trace_id, span_id, extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = f"{span.trace_id:032x}"
            entry["span_id"] = f"{span.span_id:016x}"
        if rid := context.request_id.get():
            entry["request_id"] = rid
        if tenant := context.tenant_id.get():
            entry["tenant"] = tenant
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str, separators=(",", ":"))


_SKIP = frozenset({"method", "code", "reason", "service", "peer", "backend", "model", "intent"})
"""Extras that only ever hold names the code chose (never scanned)."""
_MIN_SCAN = 6


class RedactingFilter(logging.Filter):
    """Redacts PII from a record before any handler formats it."""

    def __init__(self, scanner: LightScanner | None = None) -> None:
        super().__init__()
        self._scanner = scanner or LightScanner()

    def redact(self, text: str) -> str:
        """``text`` with PII replaced by ``[REDACTED:ENTITY]``."""
        if len(text) < _MIN_SCAN:
            return text
        spans = self._scanner.scan(text)
        return apply(text, spans, lambda s, _: f"[REDACTED:{s.entity}]") if spans else text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        for key, value in list(record.__dict__.items()):
            if key in _RESERVED or key in _SKIP or key.startswith("_"):
                continue
            if isinstance(value, str):
                setattr(record, key, self.redact(value))
            elif isinstance(value, (list, tuple)):
                setattr(record, key, [self.redact(v) if isinstance(v, str) else v for v in value])
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure(service: str, level: str = "INFO") -> None:
    """Send every log record to stderr as JSON, PII redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One INFO line per upstream request (with its URL) is an access log we do not want:
    # the model API and the pool log what matters themselves.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
