"""The ``triton`` backend: Triton Inference Server serving the TensorRT-LLM ensemble.

One generation is one request on a gRPC bidirectional stream
(``tritonclient.grpc.aio``) to the decoupled ensemble: ``text_input``,
``max_tokens``, ``stream``, sampling parameters, ``stop_words`` and, for a
tool payload, ``guided_decoding_guide_type=json_schema`` with the tool's
schema as ``guided_decoding_guide``. Each streamed ``text_output`` is a delta.

- Deadline: the attempt's timeout is the stream's gRPC deadline.
- Cancellation: closing this stream (or cancelling its task) cancels the gRPC
  call; Triton marks the request cancelled and the engine stops generating.
- End of stream: the aio client cannot ask for Triton's empty final response,
  so a stream that closes with an OK status is complete; a failure arrives as
  an error response (text only) or a gRPC status.
- Usage: the ensemble is asked for ``num_input_tokens`` and
  ``num_output_tokens`` (reported per streamed response, so the sum is exactly
  what was streamed: usage_source ``server``). Against an engine that cannot
  report them (``server_token_counts`` off) the model's tokenizer counts the
  prompt and the streamed text (``tokenizer``), else words (``estimate``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import grpc
import numpy as np
import tritonclient.grpc.aio as triton_aio  # type: ignore[import-untyped, unused-ignore]
from tritonclient.grpc import (  # type: ignore[import-untyped, unused-ignore]
    InferInput,
    InferRequestedOutput,
    InferResult,
)
from tritonclient.utils import InferenceServerException  # type: ignore[import-untyped, unused-ignore]

from llm_pool.errors import BackendError, ErrorKind
from llm_pool.generation import (
    Finished,
    GenerationEvent,
    GenerationRequest,
    TextDelta,
    ToolPayload,
)
from llm_pool.prompting import render_text
from llm_pool.tokens import TokenCounter, WordCounter
from runtime import context

INPUTS: Mapping[str, str] = {
    "text_input": "BYTES",
    "max_tokens": "INT32",
    "stream": "BOOL",
    "temperature": "FP32",
    "top_k": "INT32",
    "top_p": "FP32",
    "stop_words": "BYTES",
    "bad_words": "BYTES",
    "end_id": "INT32",
    "pad_id": "INT32",
    "seed": "UINT64",
    "exclude_input_in_output": "BOOL",
    "return_perf_metrics": "BOOL",
    "return_num_input_tokens": "BOOL",
    "return_num_output_tokens": "BOOL",
    "guided_decoding_guide_type": "BYTES",
    "guided_decoding_guide": "BYTES",
}
"""The ensemble inputs this client may send, with their Triton datatypes (the contract)."""
OUTPUTS: Mapping[str, str] = {
    "text_output": "BYTES",
    "num_input_tokens": "INT32",
    "num_output_tokens": "INT32",
}
"""The ensemble outputs this client reads."""
GUIDE_TYPES = ("json", "json_schema", "regex", "ebnf_grammar")

# Error responses carry text only; these fragments come from Triton and the
# TensorRT-LLM backend.
_NOT_READY = ("unknown model", "no available versions", "is not ready", "not found")
_QUEUE_FULL = ("exceeds maximum queue size", "maximum queue")
_BAD_REQUEST = ("unexpected inference input", "unexpected shape", "invalid argument", "must be")


def _tensor(name: str, values: Any) -> InferInput:
    array = np.asarray(values)
    tensor = InferInput(name, list(array.shape), INPUTS[name])
    tensor.set_data_from_numpy(array)
    return tensor


def _text(name: str, values: list[str]) -> InferInput:
    return _tensor(name, np.array([[v.encode("utf-8") for v in values]], dtype=np.object_))


def _scalar_out(result: InferResult, name: str) -> int | None:
    try:
        array = result.as_numpy(name)
    except InferenceServerException:
        return None
    if array is None or array.size == 0:
        return None
    return int(array.reshape(-1)[0])


def _delta_of(result: InferResult) -> str:
    array = result.as_numpy("text_output")
    if array is None or array.size == 0:
        return ""
    value = array.reshape(-1)[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class TritonBackend:
    """Generations from a Triton server hosting the TensorRT-LLM ensemble."""

    kind = "triton"

    def __init__(
        self,
        *,
        name: str,
        url: str,
        served_model: str,
        model_name: str = "ensemble",
        prompt_format: str = "plain",
        server_token_counts: bool = True,
        tokenizer: TokenCounter | None = None,
    ) -> None:
        self.name = name
        self.model = served_model
        """The served model as priced (``llama-3.1-8b-instruct``)."""
        self.url = url
        self._model_name = model_name
        self._format = prompt_format
        self._server_counts = server_token_counts
        self._tokenizer = tokenizer or WordCounter()
        self._client: triton_aio.InferenceServerClient | None = None
        outputs = OUTPUTS if server_token_counts else {"text_output": "BYTES"}
        self._outputs = [InferRequestedOutput(name) for name in outputs]

    def _connection(self) -> triton_aio.InferenceServerClient:
        # Created on first use, inside the event loop that will drive it.
        if self._client is None:
            self._client = triton_aio.InferenceServerClient(self.url)
        return self._client

    async def close(self) -> None:
        """Close the gRPC channel."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def ready(self, timeout_s: float = 1.0) -> bool:
        """Triton ``ModelReady`` for the ensemble; False when the server cannot be reached."""
        try:
            return bool(
                await self._connection().is_model_ready(self._model_name, client_timeout=timeout_s)
            )
        except InferenceServerException:
            return False

    def _inputs(self, request: GenerationRequest, prompt: str) -> list[InferInput]:
        inputs = [
            _text("text_input", [prompt]),
            _tensor("max_tokens", np.array([[request.max_tokens]], dtype=np.int32)),
            _tensor("stream", np.array([[True]], dtype=np.bool_)),
            _tensor("exclude_input_in_output", np.array([[True]], dtype=np.bool_)),
            _tensor("temperature", np.array([[request.temperature]], dtype=np.float32)),
        ]
        if request.temperature == 0:
            # Greedy decoding: deterministic answers for the same facts.
            inputs.append(_tensor("top_k", np.array([[1]], dtype=np.int32)))
        if request.stop:
            inputs.append(_text("stop_words", list(request.stop)))
        if request.tool is not None:
            schema = json.dumps(request.tool.json_schema, separators=(",", ":"))
            inputs.append(_text("guided_decoding_guide_type", ["json_schema"]))
            inputs.append(_text("guided_decoding_guide", [schema]))
        if self._server_counts:
            inputs.append(_tensor("return_num_input_tokens", np.array([[True]], dtype=np.bool_)))
            inputs.append(_tensor("return_num_output_tokens", np.array([[True]], dtype=np.bool_)))
        return inputs

    async def stream(
        self, request: GenerationRequest, *, timeout_s: float | None = None
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Stream one generation from the ensemble."""
        started = time.perf_counter()
        chat = request.chat
        if chat is not None and (chat.tools or chat.response_format is not None):
            # Raw text in, raw text out: the next link of the chain may speak tools.
            raise BackendError(
                f"{self.name} takes no tools or response formats",
                code="INVALID_ARGUMENT",
                reason="TOOLS_UNSUPPORTED",
                kind=ErrorKind.REQUEST,
            )
        prompt = render_text(request, self._format)
        infer = {
            "model_name": self._model_name,
            "inputs": self._inputs(request, prompt),
            "outputs": self._outputs,
            "request_id": context.request_id.get(),
        }

        async def one_request() -> AsyncIterator[dict[str, Any]]:
            yield infer

        usage = _Usage()
        parts: list[str] = []
        first_us = 0
        complete = False
        call = self._connection().stream_infer(one_request(), stream_timeout=timeout_s)
        try:
            async for result, error in call:
                if error is not None:
                    raise self._error_response(str(error), usage)
                usage.add(result)
                piece = _delta_of(result)
                if not piece:
                    continue
                if not first_us:
                    first_us = max(1, int((time.perf_counter() - started) * 1e6))
                parts.append(piece)
                if request.tool is None:
                    yield TextDelta(piece)
            complete = True
        except grpc.aio.AioRpcError as exc:
            raise self._status_error(exc, usage) from None
        except InferenceServerException as exc:
            raise self._error_response(str(exc), usage) from None
        finally:
            if not complete:
                # Cancelled, closed early or failed: make sure the server hears of it.
                call.cancel()
        text = "".join(parts)
        input_tokens, output_tokens, source = usage.totals(prompt, text, self._tokenizer)
        if request.tool is not None:
            yield ToolPayload(request.tool.name, text)
        yield Finished(
            backend=self.kind,
            model=self.model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            time_to_first_token_us=first_us,
            finish_reason="length" if output_tokens >= request.max_tokens else "stop",
            usage_source=source,
            backend_id=self.name,
        )

    def _status_error(self, exc: grpc.aio.AioRpcError, usage: _Usage) -> BackendError:
        code = exc.code()
        kind = {
            grpc.StatusCode.RESOURCE_EXHAUSTED: ErrorKind.RATE_LIMIT,
            grpc.StatusCode.INVALID_ARGUMENT: ErrorKind.REQUEST,
        }.get(code, ErrorKind.PROVIDER)
        return BackendError(
            f"triton {self.name}: {code.name}: {exc.details()}",
            code=code.name,
            reason=f"TRITON_{code.name}",
            kind=kind,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            usage_source=usage.source,
        )

    def _error_response(self, message: str, usage: _Usage) -> BackendError:
        lowered = message.lower()
        if any(f in lowered for f in _QUEUE_FULL):
            code, reason, kind = "RESOURCE_EXHAUSTED", "TRITON_QUEUE_FULL", ErrorKind.RATE_LIMIT
        elif any(f in lowered for f in _NOT_READY):
            code, reason, kind = "UNAVAILABLE", "TRITON_MODEL_NOT_READY", ErrorKind.PROVIDER
        elif any(f in lowered for f in _BAD_REQUEST):
            code, reason, kind = "INVALID_ARGUMENT", "TRITON_BAD_REQUEST", ErrorKind.REQUEST
        else:
            code, reason, kind = "UNAVAILABLE", "TRITON_ERROR", ErrorKind.PROVIDER
        return BackendError(
            f"triton {self.name}: {message}",
            code=code,
            reason=reason,
            kind=kind,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            usage_source=usage.source,
        )


class _Usage:
    """Token counts as the server reports them, response by response."""

    __slots__ = ("input_tokens", "output_tokens", "reported")

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.reported = False

    @property
    def source(self) -> str:
        return "server" if self.reported else ""

    def add(self, result: InferResult) -> None:
        inp = _scalar_out(result, "num_input_tokens")
        out = _scalar_out(result, "num_output_tokens")
        if inp is not None:
            self.reported = True
            self.input_tokens = max(self.input_tokens, inp)
        if out is not None:
            self.reported = True
            self.output_tokens += out

    def totals(self, prompt: str, text: str, counter: TokenCounter) -> tuple[int, int, str]:
        if self.reported:
            return self.input_tokens, self.output_tokens, "server"
        return counter.count(prompt), counter.count(text), counter.source
