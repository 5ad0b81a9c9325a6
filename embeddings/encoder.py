"""The embedder: texts in, unit-length float32 vectors out (batch API)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from prometheus_client import Counter

from embeddings.pooling import FloatArray, l2_normalize, mean_pool
from embeddings.store import ModelFiles, locate
from embeddings.tokenizer import TextTokenizer

WARM_TEXTS = (
    "where is my parcel?",
    "I would like to know how long I have to send back a jacket that does not fit me",
)
"""Warm-up texts of two lengths: the first runs allocate per-shape buffers."""

CACHE_LOOKUPS = Counter(
    "waybill_embedding_cache_lookups_total", "Embedding cache lookups, by result.", ["result"]
)


@dataclass(frozen=True, slots=True)
class EmbedderOptions:
    """How the onnxruntime session runs."""

    intra_op_threads: int = 1
    """Threads one run may use. One keeps a single short query fastest on a busy
    2-core machine and leaves the other core to the event loop; raise it for
    offline bulk embedding."""
    max_batch: int = 64
    """Texts per onnxruntime run; longer lists are split into runs of this size."""
    quantized: bool = False
    """Run the int8-weight graph: about 4x faster for one short query and 2x for a
    batch, at a mean cosine of ~0.99 to the fp32 vectors (figures in export.json).
    Scores shift slightly, so a classifier calibrates for the variant it runs."""
    cache_size: int = 0
    """Vectors kept for texts seen before (least recently used out). Support traffic
    repeats itself ("where is my order?"), and a cached vector costs a dictionary
    lookup instead of a model run; 0 turns the cache off."""


class Embedder:
    """Tokenizer + onnxruntime session + mean pooling + L2 norm.

    ``embed`` may be called from several threads at once (onnxruntime sessions
    are thread-safe); it releases the GIL while the graph runs.
    """

    def __init__(self, files: ModelFiles, options: EmbedderOptions | None = None) -> None:
        self.files = files
        self.options = options or EmbedderOptions()
        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = self.options.intra_op_threads
        session_options.inter_op_num_threads = 1
        session_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        graph = files.onnx_int8 if self.options.quantized else files.onnx
        self._session = ort.InferenceSession(
            str(graph), session_options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {i.name for i in self._session.get_inputs()}
        self._tokenizer = TextTokenizer(files.tokenizer, max_length=files.max_seq_length)
        self._cache: OrderedDict[str, FloatArray] = OrderedDict()
        self._cache_lock = threading.Lock()

    @classmethod
    def load(cls, root: Path | None = None, options: EmbedderOptions | None = None) -> Embedder:
        """The current export under ``root``; ModelMissingError names the setup command."""
        return cls(locate(root), options)

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return self.files.dim

    @property
    def version(self) -> str:
        """Short id of the export and variant, for classifier versions (``c186c1535918-int8``)."""
        return f"{self.files.key[:12]}-{'int8' if self.options.quantized else 'fp32'}"

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """Unit vectors of ``texts``, one row each, in order."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.options.cache_size:
            return self._embed_cached(texts)
        return self._embed(texts)

    def cached(self, text: str) -> bool:
        """Whether ``text``'s vector is in the cache (so embedding it runs no model)."""
        return text in self._cache

    def _embed_cached(self, texts: Sequence[str]) -> FloatArray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._cache_lock:
            for i, text in enumerate(texts):
                vector = self._cache.get(text)
                if vector is None:
                    missing.setdefault(text, []).append(i)
                else:
                    self._cache.move_to_end(text)
                    out[i] = vector
        hits = len(texts) - sum(len(rows) for rows in missing.values())
        CACHE_LOOKUPS.labels("hit").inc(hits)
        CACHE_LOOKUPS.labels("miss").inc(len(texts) - hits)
        if missing:
            fresh = self._embed(list(missing))
            with self._cache_lock:
                for (text, rows), vector in zip(missing.items(), fresh, strict=True):
                    out[rows] = vector
                    self._cache[text] = vector
                while len(self._cache) > self.options.cache_size:
                    self._cache.popitem(last=False)
        return out

    def _embed(self, texts: Sequence[str]) -> FloatArray:
        size = self.options.max_batch
        if len(texts) <= size:
            return self._run(texts)
        # Similar lengths per run: less padding computed for nothing.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            out[chunk] = self._run([texts[i] for i in chunk])
        return out

    def warm(self) -> None:
        """Run the graph once per warm-up shape, so the first real query is not the slow one."""
        for text in WARM_TEXTS:
            self._run([text])
        self._run(list(WARM_TEXTS))

    def _run(self, texts: Sequence[str]) -> FloatArray:
        encoded = self._tokenizer.encode(texts)
        feeds = {
            "input_ids": encoded.input_ids,
            "attention_mask": encoded.attention_mask,
            "token_type_ids": encoded.token_type_ids,
        }
        outputs = self._session.run(
            None, {k: v for k, v in feeds.items() if k in self._input_names}
        )
        hidden = np.asarray(outputs[0], dtype=np.float32)
        return l2_normalize(mean_pool(hidden, encoded.attention_mask))
