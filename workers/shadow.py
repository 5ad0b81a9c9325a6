"""Shadow mode: a candidate model or prompt version asked the same as production, never obeyed.

With ``WAYBILL_SHADOW_CHAIN`` (the candidate's backends, e.g. ``triton-large`` or
``openai``) or ``WAYBILL_SHADOW_PROMPT_FILE`` (the candidate's instructions) set, every
write-tool payload the worker asks the pool for is also asked of the candidate, with the
same facts, history and message. The candidate's payload is parsed and validated like a
production one and compared with the arguments production ran with, then recorded: never
executed, never shown to the customer, never waited for (it runs beside the turn, in a
background task, at most ``WAYBILL_SHADOW_MAX_IN_FLIGHT`` at a time; more are skipped and
counted).

Each comparison is a verdict: ``agree`` (the same arguments), ``differ`` (valid, other
arguments: the differing fields are recorded), ``invalid`` (malformed or breaking the
contract: the rule ids are recorded), ``failed`` (the candidate did not answer: an error,
a timeout, or its chain fell back to the composer), ``skipped`` (too many in flight). The
verdicts are counted in ``waybill_shadow_tool_calls_total`` and appended as JSON lines to
``WAYBILL_SHADOW_LOG``, which ``waybill shadow-report`` reads. A record holds tool names,
field paths, rule ids and backend ids: never the candidate's text, so nothing a model
wrote (or a customer said) reaches the log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf import json_format, message
from prometheus_client import Counter

from llm_pool.config import COMPOSER
from llm_pool.generation import GenerationRequest
from llm_pool.pool import LLMPool
from runtime import context
from runtime.settings import SettingsError, env_float, env_int, env_str
from workers.compose import generate_payload
from workers.tools import Refused, parse_payload

log = logging.getLogger("waybill.shadow")

DEFAULT_LOG = Path(".waybill/shadow/verdicts.jsonl")
"""Where verdicts go without ``WAYBILL_SHADOW_LOG`` (relative to the working directory)."""
VERDICTS = ("agree", "differ", "invalid", "failed", "skipped")
SHADOW_CALLS = Counter(
    "waybill_shadow_tool_calls_total",
    "Tool payloads a shadow candidate wrote for production's calls, by verdict.",
    ["use_case", "candidate", "tool", "verdict"],
)


@dataclass(frozen=True, slots=True)
class ShadowSettings:
    """The candidate and where its verdicts go (``ShadowSettings.from_env``)."""

    chain: tuple[str, ...]
    """The candidate's backends (``WAYBILL_SHADOW_CHAIN``); empty: production's chain."""
    instructions: str
    """The candidate's instructions (``WAYBILL_SHADOW_PROMPT_FILE``); empty: production's."""
    label: str
    """The candidate's name in metrics and records (``WAYBILL_SHADOW_LABEL``, else derived)."""
    log_path: Path
    """JSON lines of verdicts (``WAYBILL_SHADOW_LOG``)."""
    max_in_flight: int = 32
    """Candidate generations running at once (``WAYBILL_SHADOW_MAX_IN_FLIGHT``)."""
    timeout_s: float = 30.0
    """Longest a candidate generation may take (``WAYBILL_SHADOW_TIMEOUT_S``)."""

    @classmethod
    def from_env(cls) -> ShadowSettings | None:
        """The settings, or None when shadow mode is off (neither a chain nor a prompt)."""
        chain = tuple(
            n.strip() for n in env_str("WAYBILL_SHADOW_CHAIN", "").split(",") if n.strip()
        )
        prompt_file = env_str("WAYBILL_SHADOW_PROMPT_FILE", "")
        if not chain and not prompt_file:
            return None
        instructions = ""
        if prompt_file:
            try:
                instructions = Path(prompt_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise SettingsError(
                    f"WAYBILL_SHADOW_PROMPT_FILE={prompt_file!r} cannot be read: {exc.strerror}"
                ) from None
            if not instructions:
                raise SettingsError(f"WAYBILL_SHADOW_PROMPT_FILE={prompt_file!r} is empty")
        label = env_str("WAYBILL_SHADOW_LABEL", "") or "+".join(
            [*chain, *([Path(prompt_file).stem] if prompt_file else [])]
        )
        return cls(
            chain=chain,
            instructions=instructions,
            label=label,
            log_path=Path(env_str("WAYBILL_SHADOW_LOG", "") or DEFAULT_LOG),
            max_in_flight=env_int("WAYBILL_SHADOW_MAX_IN_FLIGHT", 32, minimum=1),
            timeout_s=env_float("WAYBILL_SHADOW_TIMEOUT_S", 30.0, minimum=0.1),
        )


def differing_fields(a: message.Message, b: message.Message) -> list[str]:
    """Field paths (``amount.minorUnits``) whose values differ between two messages."""

    def flat(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
        if isinstance(value, dict):
            for key, inner in value.items():
                flat(inner, f"{prefix}.{key}" if prefix else key, out)
        else:
            out[prefix] = value
        return out

    left = flat(json_format.MessageToDict(a), "", {})
    right = flat(json_format.MessageToDict(b), "", {})
    return sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))


class Shadow:
    """Asks the candidate beside production and records how they compare."""

    def __init__(
        self,
        pool: LLMPool,
        settings: ShadowSettings,
        *,
        use_case: str,
        candidate_use_case: str,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._use_case = use_case
        self._candidate_use_case = candidate_use_case
        self._tasks: set[asyncio.Task[None]] = set()
        settings.log_path.parent.mkdir(parents=True, exist_ok=True)

    @property
    def label(self) -> str:
        """The candidate's name."""
        return self._settings.label

    def observe(self, tool: str, request: GenerationRequest, production: message.Message) -> None:
        """Ask the candidate for ``tool``'s payload in the background; compare it with the
        arguments production runs with (``production``)."""
        if len(self._tasks) >= self._settings.max_in_flight:
            self._record(tool, "skipped")
            return
        prompt = request.prompt
        if self._settings.instructions:
            prompt = dataclasses.replace(prompt, instructions=self._settings.instructions)
        candidate = dataclasses.replace(request, use_case=self._candidate_use_case, prompt=prompt)
        task = asyncio.create_task(self._run(tool, candidate, production))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, tool: str, request: GenerationRequest, production: message.Message
    ) -> None:
        # The candidate has its own time: the turn it shadows may end first.
        context.deadline.set(time.monotonic() + self._settings.timeout_s)
        try:
            text, backend = await asyncio.wait_for(
                self._generate(request), timeout=self._settings.timeout_s
            )
        except TimeoutError:
            text, backend = None, ""
        except Exception:  # the candidate must never disturb production
            log.exception("shadow generation failed", extra={"tool": tool})
            text, backend = None, ""
        fell_back = backend == COMPOSER and any(
            link.id != COMPOSER for link in self._pool.links(self._candidate_use_case)
        )
        if text is None or fell_back:
            self._record(tool, "failed", backend=backend)
            return
        parsed = parse_payload(tool, text)
        if isinstance(parsed, Refused):
            self._record(tool, "invalid", backend=backend, rule_ids=parsed.rule_ids)
            return
        fields = differing_fields(parsed, production)
        self._record(tool, "differ" if fields else "agree", backend=backend, fields=fields)

    async def _generate(self, request: GenerationRequest) -> tuple[str | None, str]:
        text, end = await generate_payload(self._pool, request)
        return text, "" if end is None else end.backend_id or end.backend

    def _record(
        self,
        tool: str,
        verdict: str,
        *,
        backend: str = "",
        fields: list[str] | None = None,
        rule_ids: list[str] | None = None,
    ) -> None:
        SHADOW_CALLS.labels(self._use_case, self.label, tool, verdict).inc()
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "use_case": self._use_case,
            "candidate": self.label,
            "tool": tool,
            "verdict": verdict,
            "backend": backend,
            "fields": fields or [],
            "rule_ids": rule_ids or [],
            "request_id": context.request_id.get(),
        }
        try:
            with self._settings.log_path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
        except OSError as exc:
            log.warning("shadow verdict not written", extra={"error": exc.strerror})

    async def close(self) -> None:
        """Wait for the candidate generations still running (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
