"""CPU test model with the tensor contract of the TensorRT-LLM ensemble.

A deterministic stand-in for an LLM, served by a real Triton server (the one
nvidia-pytriton bundles) so the pool's Triton backend is tested on the real
protocol: decoupled streaming, one response per token, ``max_tokens``,
``stop_words``, guided decoding (``json_schema`` guides produce schema-valid
JSON), token counts (``return_num_input_tokens`` / ``return_num_output_tokens``,
per streamed response as TensorRT-LLM reports them), request cancellation.

It answers from the ``Facts: {json}`` line of the prompt. Its tokenizer is
words and punctuation with the leading whitespace attached, so the streamed
deltas concatenate to the answer exactly.

Test knobs, only in this model: directives in the prompt text
``[[test:fail]]``, ``[[test:fail-times=N:KEY]]`` (the first N requests carrying
KEY fail), ``[[test:delay=MS]]`` (before the first token), ``[[test:slow=MS]]``
(before every token), ``[[test:break-after=N]]`` (an error after N tokens),
``[[test:queue-full]]``. With ``WAYBILL_TEST_MODEL_EVENTS`` set, every request
appends one JSON line (request id, outcome, tokens sent) to that file.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # provided by Triton's Python backend

MODEL_NAME = "waybill-cpu-test"
TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])")
DIRECTIVE = re.compile(r"\[\[test:([a-z-]+)(?:=([^\]]*))?\]\]")
FACTS = re.compile(r"^Facts: (\{.*\})\s*$", re.MULTILINE)


def tokens_of(text: str) -> list[str]:
    """Tokens with their leading whitespace: ''.join(tokens) == text.strip() (mostly)."""
    return TOKEN.findall(text)


def _input(request: Any, name: str) -> Any:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy().reshape(-1)


def _scalar(request: Any, name: str, default: Any) -> Any:
    values = _input(request, name)
    return default if values is None or values.size == 0 else values[0]


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _example(pattern: str) -> str:
    """A short string matching a simple anchored regex (literals, classes, {n,m}, ?)."""
    if re.fullmatch(pattern, "") or re.search(pattern, "") is not None:
        return ""
    body = pattern.lstrip("^").rstrip("$")
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "[":
            end = body.index("]", i)
            atom = body[i + 1 : end][0]
            i = end + 1
        elif char == "(":
            depth, j = 0, i
            while True:
                depth += {"(": 1, ")": -1}.get(body[j], 0)
                if depth == 0:
                    break
                j += 1
            group = body[i + 1 : j]
            i = j + 1
            if i < len(body) and body[i] == "?":
                i += 1
                continue
            atom = _example(group)
        elif char == "\\":
            atom = body[i + 1]
            i += 2
        else:
            atom = char
            i += 1
        count = 1
        if i < len(body) and body[i] == "{":
            end = body.index("}", i)
            count = int(body[i + 1 : end].split(",")[0])
            i = end + 1
        elif i < len(body) and body[i] in "?*":
            count = 0
            i += 1
        elif i < len(body) and body[i] == "+":
            i += 1
        out.append(atom * count)
    return "".join(out)


def instance(schema: dict[str, Any], fact: Any) -> Any:
    """A JSON value valid under ``schema``, taken from ``fact`` where it fits."""
    if "enum" in schema:
        return fact if fact in schema["enum"] else schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        facts = fact if isinstance(fact, dict) else {}
        required = set(schema.get("required", []))
        out: dict[str, Any] = {}
        for name, sub in schema.get("properties", {}).items():
            if name in facts or name in required:
                out[name] = instance(sub, facts.get(name))
        return out
    if kind == "array":
        items = fact if isinstance(fact, list) else []
        return [instance(schema.get("items", {}), v) for v in items]
    if kind == "integer":
        if isinstance(fact, int | float | str) and str(fact).lstrip("-").isdigit():
            return int(fact)
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
        return max(0, int(low))
    if kind == "number":
        return float(fact) if isinstance(fact, int | float) else float(schema.get("minimum", 0))
    if kind == "boolean":
        return bool(fact)
    text = "" if fact is None else str(fact)
    pattern = schema.get("pattern")
    if pattern and re.search(pattern, text) is None:
        text = _example(pattern)
    if len(text) < schema.get("minLength", 0):
        text = text.ljust(schema["minLength"], "x")
    return text[: schema.get("maxLength", len(text))]


def answer_for(prompt: str) -> str:
    """The plain-text answer: the facts of the prompt, stated one by one."""
    found = FACTS.findall(prompt)
    facts: dict[str, Any] = json.loads(found[-1]) if found else {}
    parts = []
    for key, value in facts.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        if value in ("", None) or isinstance(value, dict):
            continue
        parts.append(f"{key.replace('_', ' ').capitalize()}: {value}.")
    if not parts:
        return "I have no facts to answer from."
    return "Here is what I found. " + " ".join(parts)


class TritonPythonModel:
    """Decoupled: every request is answered from its own thread, token by token."""

    def initialize(self, args: dict[str, Any]) -> None:
        self._events_path = os.environ.get("WAYBILL_TEST_MODEL_EVENTS", "")
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            threading.Thread(target=self._serve, args=(request,), daemon=True).start()

    def finalize(self) -> None:
        pass

    def _record(self, request: Any, outcome: str, sent: int) -> None:
        if not self._events_path:
            return
        line = json.dumps({"request_id": request.request_id(), "outcome": outcome, "tokens": sent})
        with self._lock, open(self._events_path, "a") as fh:
            fh.write(line + "\n")

    def _fail(self, request: Any, sender: Any, message: str, outcome: str, sent: int) -> None:
        self._record(request, outcome, sent)
        sender.send(
            pb_utils.InferenceResponse(error=pb_utils.TritonError(message)),
            flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
        )

    def _fails_now(self, spec: str) -> bool:
        times, _, key = spec.partition(":")
        with self._lock:
            seen = self._failures.get(key, 0)
            self._failures[key] = seen + 1
        return seen < int(times)

    def _serve(self, request: Any) -> None:
        sender = request.get_response_sender()
        try:
            self._generate(request, sender)
        except Exception as exc:  # a bug here must still end the stream
            self._fail(request, sender, f"test model error: {exc}", "error", 0)

    def _generate(self, request: Any, sender: Any) -> None:
        prompt = _text(_scalar(request, "text_input", b""))
        max_tokens = int(_scalar(request, "max_tokens", 0))
        streaming = bool(_scalar(request, "stream", True))
        want_in = bool(_scalar(request, "return_num_input_tokens", False))
        want_out = bool(_scalar(request, "return_num_output_tokens", False))
        guide_type = _text(_scalar(request, "guided_decoding_guide_type", b""))
        guide = _text(_scalar(request, "guided_decoding_guide", b""))
        stops = [_text(s) for s in (_input(request, "stop_words") or []) if _text(s)]
        knobs = dict(DIRECTIVE.findall(prompt))
        if max_tokens <= 0:
            self._fail(request, sender, "max_tokens must be positive", "invalid", 0)
            return
        if "queue-full" in knobs:
            self._fail(request, sender, "Exceeds maximum queue size", "rejected", 0)
            return
        if "fail" in knobs or ("fail-times" in knobs and self._fails_now(knobs["fail-times"])):
            self._fail(request, sender, "test model: induced failure", "failed", 0)
            return
        if guide_type in ("", "none"):
            text = answer_for(prompt)
        elif guide_type == "json_schema":
            found = FACTS.findall(prompt)
            facts = json.loads(found[-1]) if found else {}
            text = json.dumps(instance(json.loads(guide), facts), separators=(",", ":"))
        elif guide_type == "json":
            found = FACTS.findall(prompt)
            text = found[-1] if found else "{}"
        else:
            self._fail(request, sender, f"guide type {guide_type} is not supported", "invalid", 0)
            return
        for stop in stops:
            at = text.find(stop)
            if at >= 0:
                text = text[:at]
        tokens = tokens_of(text)[:max_tokens]
        input_tokens = len(tokens_of(prompt))
        if "delay" in knobs:
            time.sleep(int(knobs["delay"]) / 1000)
        chunks = tokens if streaming else ["".join(tokens)]
        break_after = int(knobs.get("break-after", "-1"))
        sent = 0
        for i, chunk in enumerate(chunks):
            if "slow" in knobs:
                time.sleep(int(knobs["slow"]) / 1000)
            if request.is_cancelled():
                self._record(request, "cancelled", sent)
                sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                return
            if i == break_after:
                self._fail(request, sender, "test model: stream broken", "broken", sent)
                return
            count = len(tokens) if not streaming else 1
            outputs = [pb_utils.Tensor("text_output", np.array([[chunk.encode()]], dtype=object))]
            if want_in:
                outputs.append(
                    pb_utils.Tensor("num_input_tokens", np.array([[input_tokens]], np.int32))
                )
            if want_out:
                outputs.append(pb_utils.Tensor("num_output_tokens", np.array([[count]], np.int32)))
            sender.send(pb_utils.InferenceResponse(output_tensors=outputs))
            sent += count
        self._record(request, "completed", sent)
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
