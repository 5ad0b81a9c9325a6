"""Counting tokens when a server does not report them.

``HFTokenizer`` loads the served model's ``tokenizer.json`` (the ``tokenizers``
package) and counts exactly what that model would see. ``WordCounter`` is the
composer's word-and-punctuation count: the composer's own unit, and only an
estimate for a real model (usage_source ``estimate``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

_WORD = re.compile(r"\w+|[^\w\s]")


class TokenCounter(Protocol):
    """Counts tokens of a text."""

    source: str
    """``tokenizer`` or ``estimate``: what the counts are worth for billing."""

    def count(self, text: str) -> int:
        """Tokens in ``text``."""
        ...


class WordCounter:
    """Words and punctuation marks."""

    source = "estimate"

    def count(self, text: str) -> int:
        """Words and punctuation marks in ``text``."""
        return len(_WORD.findall(text))


class HFTokenizer:
    """A Hugging Face ``tokenizer.json``, without special tokens."""

    source = "tokenizer"

    def __init__(self, path: str | Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(path))

    def count(self, text: str) -> int:
        """Token ids the model's tokenizer produces for ``text``."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)


def counter_for(tokenizer_path: str) -> TokenCounter:
    """The model's tokenizer when configured, else the word estimate."""
    if tokenizer_path:
        return HFTokenizer(tokenizer_path)
    return WordCounter()
