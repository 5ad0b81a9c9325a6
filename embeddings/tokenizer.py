"""The model's WordPiece tokenizer, configured as sentence-transformers uses it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

IntArray = npt.NDArray[np.int64]
PAD_TOKEN = "[PAD]"  # noqa: S105 - a vocabulary token, not a secret


@dataclass(frozen=True, slots=True)
class Encoded:
    """A padded batch of token ids, shaped ``(batch, longest text in the batch)``."""

    input_ids: IntArray
    attention_mask: IntArray
    token_type_ids: IntArray


class TextTokenizer:
    """Tokenizes batches: truncation at the model's length, padding to the longest text.

    The shipped ``tokenizer.json`` pads every text to 128 tokens; padding only
    to the batch's longest text gives the same vectors (padding is masked out)
    at a fraction of the cost for short chat messages.
    """

    def __init__(self, path: Path, *, max_length: int) -> None:
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.enable_truncation(max_length=max_length)
        pad = PAD_TOKEN
        pad_id = self._tokenizer.token_to_id(pad)
        self._tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad)

    def encode(self, texts: Sequence[str]) -> Encoded:
        """Token ids, attention mask and segment ids of ``texts``."""
        batch = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
        types = np.array([e.type_ids for e in batch], dtype=np.int64)
        return Encoded(input_ids=ids, attention_mask=mask, token_type_ids=types)


class TokenCounter:
    """Counts the model's word pieces in a text, without truncation (chunk sizing)."""

    def __init__(self, path: Path) -> None:
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def __call__(self, text: str) -> int:
        """Word pieces of ``text`` (special tokens excluded)."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def many(self, texts: Sequence[str]) -> list[int]:
        """Word pieces of each text."""
        return [
            len(e.ids) for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        ]
