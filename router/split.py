"""The held-out split: which rows of a data file are the test portion.

Deterministic and independent of row order: a row's bucket is a hash of the
split's salt and the row id, so a file can grow without moving old rows
between portions. ``data/router/split.json`` holds the salt and the test
share per file name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from runtime import paths

DEFAULT_SPLIT = paths.data_dir("router", "split.json")


class Portion(StrEnum):
    """Which rows of a file to use."""

    ALL = "all"
    DEV = "dev"
    """For writing exemplars, fitting the calibration and picking the threshold."""
    TEST = "test"
    """Held out: reported, never tuned on."""


@dataclass(frozen=True, slots=True)
class Split:
    """A split definition."""

    salt: str
    test_percent: dict[str, int]
    """Percent of rows held out, by file name; ``default`` for the others."""

    @classmethod
    def load(cls, path: Path = DEFAULT_SPLIT) -> Split:
        """Read ``split.json``; ValueError names what is wrong."""
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
            salt = str(raw["salt"])
            shares = {str(k): int(v) for k, v in dict(raw["test_percent"]).items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a split definition ({exc})") from None
        if "default" not in shares or not all(0 <= v <= 100 for v in shares.values()):
            raise ValueError(f"{path}: test_percent needs 'default' and values in 0..100")
        return cls(salt=salt, test_percent=shares)

    def percent_for(self, file_name: str) -> int:
        """Test share of ``file_name`` in percent."""
        return self.test_percent.get(file_name, self.test_percent["default"])

    def bucket(self, row_key: str) -> int:
        """0..99, stable for a row key."""
        digest = hashlib.sha256(f"{self.salt}/{row_key}".encode()).hexdigest()
        return int(digest[:8], 16) % 100

    def portion_of(self, row_key: str, file_name: str) -> Portion:
        """DEV or TEST for one row of ``file_name``."""
        return Portion.TEST if self.bucket(row_key) < self.percent_for(file_name) else Portion.DEV

    def keeps(self, row_key: str, file_name: str, portion: Portion) -> bool:
        """Whether a row belongs to ``portion``."""
        return portion == Portion.ALL or self.portion_of(row_key, file_name) == portion
