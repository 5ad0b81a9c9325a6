"""Prompt-injection scoring: a fine-tuned classifier plus high-precision patterns.

The classifier (``guardrails.train_injection``, exported to ONNX at setup) scores a
text 0..1; a few patterns that are never benign in this domain ("ignore all previous
instructions", "reveal your system prompt", their German, French, Spanish and Dutch
forms) score 1.0. The score is the larger of the two. The thresholds are settings:
block a customer message at >= 0.85, drop retrieved or tool-returned text from a
prompt at >= 0.70, quarantine a document at ingest at >= 0.90.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from embeddings.tokenizer import TextTokenizer
from runtime.pii import identifier_spans

FAMILY = "injection-classifier"
MAX_TOKENS = 128
"""Word pieces the classifier reads (a 4,000-character message is scored on its head
and, when longer, on a window at its tail too)."""

_PATTERNS: tuple[str, ...] = (
    # English
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.!?\n]{0,30}\b(?:all|any|every|the|your|"
    r"previous|prior|above|earlier|preceding|original|system)\b[^.!?\n]{0,20}\b(?:instructions?|"
    r"rules|prompts?|guidelines|directives|constraints|guardrails|polic(?:y|ies))\b",
    r"\b(?:reveal|print|show|repeat|output|display|leak|dump|tell me)\b[^.!?\n]{0,30}\b(?:your|the)"
    r"\s+(?:system|initial|original|hidden|secret)\s+(?:prompt|instructions?|message|rules)\b",
    r"\byou are (?:now )?(?:in )?(?:DAN|developer mode|jailbreak mode|unrestricted mode)\b",
    r"\bdo anything now\b",
    # German, French, Spanish, Dutch
    r"\b(?:ignoriere|vergiss|missachte)\b[^.!?\n]{0,30}\b(?:anweisungen|instruktionen|regeln|"
    r"vorgaben|befehle)\b",
    r"\b(?:ignore[zr]?|oublie[zr]?)\b[^.!?\n]{0,30}\b(?:instructions|consignes|règles)\b",
    r"\b(?:ignora|olvida|olvidate|olvídate)\b[^.!?\n]{0,30}\b(?:instrucciones|reglas|normas)\b",
    r"\b(?:negeer|vergeet)\b[^.!?\n]{0,30}\b(?:instructies|regels|aanwijzingen)\b",
)
_COMPILED = tuple(re.compile(p, re.IGNORECASE) for p in _PATTERNS)


def normalise_identifiers(text: str) -> str:
    """``text`` with every AWB, order id, SKU and rule code replaced by one fixed form: the
    score (and so the verdict) never depends on which identifier a customer typed, so it
    cannot tell one customer's parcel from a missing one."""
    spans = sorted(identifier_spans(text))
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for start, end in spans:
        if start < last:
            continue
        out.append(text[last:start])
        out.append(_canonical(text[start:end]))
        last = end
    out.append(text[last:])
    return "".join(out)


def _canonical(value: str) -> str:
    upper = value.upper()
    if upper.startswith("ORD"):
        return "ORD-00000000"
    if upper.startswith("SKU"):
        return "SKU-0000"
    if upper.startswith("W"):
        return "WB0000000000"
    return "CODE-0"


def pattern_hit(text: str) -> bool:
    """Whether a never-benign injection phrase occurs in ``text``."""
    return any(p.search(text) for p in _COMPILED)


def locate_model(root: Path) -> Path:
    """The current classifier directory under ``root`` (the model dir)."""
    family = root / FAMILY
    try:
        key = json.loads((family / "current.json").read_text())["key"]
    except (OSError, ValueError, KeyError) as exc:
        raise FileNotFoundError(
            f"the injection classifier is not trained under {family} ({exc}); run "
            "scripts/setup.sh (or python -m guardrails.train_injection)"
        ) from None
    directory = family / str(key)
    if not (directory / "model.onnx").is_file():
        raise FileNotFoundError(f"{directory}/model.onnx is missing; run scripts/setup.sh")
    return directory


BLOCK_SCORE = 0.85
"""Where the calibrated scale puts the block threshold (seed 004's default)."""


def calibrate(probability: float, block_at: float) -> float:
    """Map a classifier probability onto the scale the thresholds are written in: the
    raw probability ``block_at`` (placed at setup on held-out calibration rows) becomes
    ``BLOCK_SCORE``; below and above it the map is linear, so order is kept."""
    if probability < block_at:
        return BLOCK_SCORE * probability / block_at
    return BLOCK_SCORE + (1.0 - BLOCK_SCORE) * (probability - block_at) / (1.0 - block_at)


class InjectionModel:
    """The exported classifier: texts -> probability of injection (raw, uncalibrated)."""

    def __init__(self, directory: Path, *, threads: int = 1) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = TextTokenizer(directory / "tokenizer.json", max_length=MAX_TOKENS)
        self.version = directory.name
        try:
            meta = json.loads((directory / "model.json").read_text())
        except (OSError, ValueError):
            meta = {}
        self.block_at = float(meta.get("block_at", BLOCK_SCORE))
        """The raw probability that maps to ``BLOCK_SCORE``."""

    def probabilities(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Probability of injection of each text."""
        enc = self._tokenizer.encode(texts)
        (out,) = self._session.run(
            None,
            {
                "input_ids": enc.input_ids,
                "attention_mask": enc.attention_mask,
                "token_type_ids": enc.token_type_ids,
            },
        )
        return np.asarray(out, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class Score:
    """An injection score and where it came from."""

    score: float
    pattern: bool


class InjectionScorer:
    """Scores texts: max(classifier, patterns)."""

    TAIL_CHARS = 600
    """A text longer than this is also scored on its last characters (an instruction
    appended after a long harmless text is not cut away by truncation)."""

    def __init__(self, model: InjectionModel) -> None:
        self._model = model

    @property
    def version(self) -> str:
        """The classifier's training key."""
        return self._model.version

    def score_many(self, texts: Sequence[str]) -> list[Score]:
        """Scores of ``texts``."""
        if not texts:
            return []
        windows: list[str] = []
        owners: list[int] = []
        for i, raw in enumerate(texts):
            text = normalise_identifiers(raw)
            windows.append(text)
            owners.append(i)
            if len(text) > self.TAIL_CHARS:
                windows.append(text[-self.TAIL_CHARS :])
                owners.append(i)
        probs = self._model.probabilities(windows)
        best = [0.0] * len(texts)
        for owner, p in zip(owners, probs, strict=True):
            best[owner] = max(best[owner], calibrate(float(p), self._model.block_at))
        out = []
        for text, p in zip(texts, best, strict=True):
            hit = pattern_hit(text)
            out.append(Score(1.0 if hit else p, hit))
        return out

    def score(self, text: str) -> Score:
        """The score of one text."""
        return self.score_many([text])[0]
