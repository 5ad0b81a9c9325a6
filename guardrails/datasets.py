"""The guardrails' data: labelled injection texts and span-labelled PII texts, with
their held-out portions (``data/guardrails/split.json``).

External files (``$WAYBILL_SHARED_DATA``): deepset's prompt injections and Presidio's
generated PII sentences, split by row id. Our own files (``data/guardrails``) are
split by template, so no variant of a held-out template is trained or tuned on.
The injection classifier trains on the DEV portions, our training-only file, and
benign customer messages from the router's DEV portions (Bitext, CLINC); it is
reported on the TEST portions only.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.split import DEFAULT_SPLIT as ROUTER_SPLIT
from router.split import Portion, Split
from runtime import paths

SPLIT_FILE = paths.data_dir("guardrails", "split.json")
DEEPSET = ("injection", "deepset_prompt_injections_train.jsonl")
PRESIDIO = ("pii", "presidio_generated_large_testdata.jsonl")
DOMAIN_INJECTION = paths.data_dir("guardrails", "injection_domain.jsonl")
DOMAIN_TRAINING = paths.data_dir("guardrails", "injection_train.jsonl")
DOMAIN_TRAINING_MORE = paths.data_dir("guardrails", "injection_train_more.jsonl")
"""More training-only texts (v2): benign trigger-word texts and attacks in five languages,
written without reading the evaluation files."""
DOMAIN_PII = paths.data_dir("guardrails", "pii_domain.jsonl")
CORPUS = paths.data_dir("guardrails", "injection_corpus.v2.jsonl")
"""What the classifier trains on: built from the DEV portions by ``main``, committed."""
BENIGN_CUSTOMER = (("intents", "bitext_8k_utterances.jsonl"), ("oos", "inscope_val.jsonl"))
BENIGN_SAMPLE = 600
"""Benign customer messages drawn from the router's DEV portions for training."""
POLICY_TRAINING_TENANT = "acme-retail"
"""Whose policy documents (``data/kb``) train the classifier as benign text. The other
tenant's documents are never trained on: they show whether a client's policy text that the
classifier has not seen passes the ingest screen (``policy_chunks``, docs/guardrails.md)."""
TAIL_CHARS = 600
"""The scorer also reads a long text's last characters (``InjectionScorer.TAIL_CHARS``)."""


@dataclass(frozen=True, slots=True)
class LabelledText:
    """A text labelled injection (1) or benign (0)."""

    id: str
    text: str
    label: int
    source: str
    kind: str = ""
    channel: str = "user"


@dataclass(frozen=True, slots=True)
class PiiSpan:
    """A labelled PII span."""

    entity_type: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class PiiText:
    """A text with its PII spans and the identifiers that must survive redaction."""

    id: str
    text: str
    spans: tuple[PiiSpan, ...]
    identifiers: tuple[str, ...] = field(default=())


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError:
                        raise ValueError(f"{path}:{number}: not JSON") from None
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing") from None


def _split() -> Split:
    return Split.load(SPLIT_FILE)


def injection_texts(path: Path, portion: Portion, *, by_template: bool) -> list[LabelledText]:
    """Labelled injection rows of ``path`` in ``portion`` (``label``: 1 = injection)."""
    split = _split()
    out = []
    for row in _rows(path):
        key = str(row["template"] if by_template else row["id"])
        if split.keeps(key, path.name, portion):
            out.append(
                LabelledText(
                    id=str(row["id"]),
                    text=str(row["text"]),
                    label=int(row["label"]),
                    source=path.name,
                    kind=str(row.get("kind", "")),
                    channel=str(row.get("channel", "user")),
                )
            )
    return out


def deepset(portion: Portion, shared: Path | None = None) -> list[LabelledText]:
    """deepset's prompt-injection rows (about a third German)."""
    root = shared or paths.shared_data_dir()
    return injection_texts(root.joinpath(*DEEPSET), portion, by_template=False)


def domain(portion: Portion, path: Path = DOMAIN_INJECTION) -> list[LabelledText]:
    """Our attacks on this platform and benign texts full of trigger words."""
    return injection_texts(path, portion, by_template=True)


def benign_customer_messages(
    shared: Path | None = None, *, n: int = BENIGN_SAMPLE, seed: int = 7
) -> list[LabelledText]:
    """``n`` customer messages from the router's DEV portions (benign by construction)."""
    root = shared or paths.shared_data_dir()
    split = Split.load(ROUTER_SPLIT)
    pool = []
    for parts in BENIGN_CUSTOMER:
        path = root.joinpath(*parts)
        for row in _rows(path):
            rid = str(row.get("id") or row["text"])
            if split.keeps(rid, path.name, Portion.DEV):
                pool.append(LabelledText(rid, str(row["text"]), 0, path.name, "benign_plain"))
    random.Random(seed).shuffle(pool)
    return pool[:n]


def policy_chunks(tenant: str) -> list[LabelledText]:
    """The chunks of ``tenant``'s policy documents (``data/kb``) as benign texts, as the
    ingest screen reads them: each chunk, and the tail of a long one."""
    from embeddings import locate
    from embeddings.tokenizer import TokenCounter
    from retrieval.chunking import chunk_document
    from retrieval.documents import load_dir

    count = TokenCounter(locate().tokenizer)
    loaded = load_dir(paths.data_dir("kb", tenant), tenants={tenant})
    out = []
    for document in loaded.documents:
        for chunk in chunk_document(document, count):
            source = f"kb/{tenant}"
            out.append(LabelledText(f"kb-{chunk.uid}", chunk.text, 0, source, "benign_policy"))
            if len(chunk.text) > TAIL_CHARS:
                tail = chunk.text[-TAIL_CHARS:]
                out.append(LabelledText(f"kb-{chunk.uid}-tail", tail, 0, source, "benign_policy"))
    return out


def training_set(shared: Path | None = None) -> list[LabelledText]:
    """Everything the injection classifier trains on (no TEST row of any file)."""
    rows = deepset(Portion.DEV, shared) + domain(Portion.DEV)
    rows += injection_texts(DOMAIN_TRAINING, Portion.ALL, by_template=False)
    rows += injection_texts(DOMAIN_TRAINING_MORE, Portion.ALL, by_template=False)
    rows += benign_customer_messages(shared)
    rows += policy_chunks(POLICY_TRAINING_TENANT)
    return rows


def write_corpus(rows: list[LabelledText], path: Path = CORPUS) -> None:
    """Write the training corpus (committed: setup trains from it without the shared data)."""
    lines = [
        json.dumps(
            {
                "id": r.id,
                "text": r.text,
                "label": r.label,
                "source": r.source,
                "kind": r.kind,
            },
            ensure_ascii=False,
        )
        for r in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def corpus(path: Path = CORPUS) -> list[LabelledText]:
    """The committed training corpus."""
    return [
        LabelledText(
            str(r["id"]),
            str(r["text"]),
            int(r["label"]),
            str(r["source"]),
            str(r.get("kind", "")),
        )
        for r in _rows(path)
    ]


def main(argv: list[str] | None = None) -> int:
    """``python -m guardrails.datasets``: rebuild the committed training corpus."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m guardrails.datasets",
        description="Rebuild data/guardrails/injection_corpus.v2.jsonl from the DEV portions "
        "of the external data ($WAYBILL_SHARED_DATA), our own files and one tenant's policy "
        "documents (chunked with the embedding model's tokenizer: run scripts/setup.sh first).",
    )
    parser.parse_args(argv)
    from embeddings import ModelMissingError

    try:
        rows = training_set()
    except (OSError, ValueError, ModelMissingError) as exc:
        print(f"guardrails.datasets: {exc}", file=sys.stderr)
        return 1
    write_corpus(rows)
    print(f"{CORPUS}: {len(rows)} texts, {sum(r.label for r in rows)} injections")
    return 0


def pii_texts(path: Path, portion: Portion, *, by_template: bool) -> list[PiiText]:
    """Span-labelled PII rows of ``path`` in ``portion``."""
    split = _split()
    out = []
    for row in _rows(path):
        key = str(row["template"] if by_template else row["id"])
        if not split.keeps(key, path.name, portion):
            continue
        spans = tuple(
            PiiSpan(str(s["entity_type"]), int(s["start"]), int(s["end"])) for s in row["spans"]
        )
        out.append(
            PiiText(str(row["id"]), str(row["text"]), spans, tuple(row.get("identifiers", ())))
        )
    return out


def presidio(portion: Portion, shared: Path | None = None) -> list[PiiText]:
    """Presidio's generated PII sentences."""
    root = shared or paths.shared_data_dir()
    return pii_texts(root.joinpath(*PRESIDIO), portion, by_template=False)


def pii_domain(portion: Portion, path: Path = DOMAIN_PII) -> list[PiiText]:
    """Our customer messages with the demo regions' formats and identifiers."""
    return pii_texts(path, portion, by_template=True)


if __name__ == "__main__":
    raise SystemExit(main())
