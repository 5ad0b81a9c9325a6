"""Where a process keeps its audit log and its pseudonym keys by default.

Both under the writable state (``$WAYBILL_DATA_DIR``, default ``.waybill/data``), in
sibling folders: ``audit/`` may be copied, exported or shipped whole, ``audit-keys/`` never.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "WAYBILL_DATA_DIR"


def _data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or ".waybill/data")


def default_log_dir() -> Path:
    """``$WAYBILL_DATA_DIR/audit``."""
    return _data_dir() / "audit"


def default_keys_file() -> Path:
    """``$WAYBILL_DATA_DIR/audit-keys/keys.sqlite3``."""
    return _data_dir() / "audit-keys" / "keys.sqlite3"
