"""The chain and its line format.

Record ``n`` (``seq``, counting from 1 over the log's whole life) is linked to the one before:

    hash_n = SHA-256(hash_{n-1} as 64 lowercase hex || "\\n" || decimal seq || "\\n" || canonical)

with ``hash_0`` 64 zeros. Each record is one line of a segment file, with its fields always
in this order and the canonical bytes verbatim::

    {"seq":7,"prev":"<64 hex>","hash":"<64 hex>","record":{...canonical...}}

so the line is JSON for DuckDB while a verifier finds every part at fixed offsets from the
first comma and hashes the stored bytes without parsing or re-serialising them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

GENESIS = "0" * 64
"""The ``prev`` of the first record of a log."""

PREFIX = b'{"seq":'
PREV = b',"prev":"'
HASH = b'","hash":"'
RECORD = b'","record":'
END = b"}\n"
# Offsets from the comma after seq.
PREV_AT = len(PREV)
HASH_SEP_AT = PREV_AT + 64
HASH_AT = HASH_SEP_AT + len(HASH)
RECORD_SEP_AT = HASH_AT + 64
RECORD_AT = RECORD_SEP_AT + len(RECORD)


def link(prev: str, seq: int, canonical: bytes) -> str:
    """``hash_n`` of the record ``seq`` with canonical bytes ``canonical`` after ``prev``."""
    return hashlib.sha256(b"%s\n%d\n%s" % (prev.encode("ascii"), seq, canonical)).hexdigest()


def encode_line(seq: int, prev: str, digest: str, canonical: bytes) -> bytes:
    """One segment line, newline included."""
    return b'{"seq":%d,"prev":"%s","hash":"%s","record":%s}\n' % (
        seq,
        prev.encode("ascii"),
        digest.encode("ascii"),
        canonical,
    )


@dataclass(frozen=True, slots=True)
class Line:
    """The parts of one segment line."""

    seq: int
    prev: str
    hash: str
    canonical: bytes

    def intact(self) -> bool:
        """Whether ``hash`` is the hash of this line's own content."""
        return link(self.prev, self.seq, self.canonical) == self.hash


def parse_line(raw: bytes) -> Line | None:
    """The parts of a complete line (newline included); None when it is not one."""
    if not raw.startswith(PREFIX) or not raw.endswith(END):
        return None
    comma = raw.find(b",", len(PREFIX))
    digits = raw[len(PREFIX) : comma]
    if (
        comma < 0
        or not digits.isdigit()
        or raw[comma : comma + PREV_AT] != PREV
        or raw[comma + HASH_SEP_AT : comma + HASH_AT] != HASH
        or raw[comma + RECORD_SEP_AT : comma + RECORD_AT] != RECORD
    ):
        return None
    try:
        prev = raw[comma + PREV_AT : comma + HASH_SEP_AT].decode("ascii")
        digest = raw[comma + HASH_AT : comma + RECORD_SEP_AT].decode("ascii")
    except UnicodeDecodeError:
        return None
    return Line(int(digits), prev, digest, raw[comma + RECORD_AT : -len(END)])
