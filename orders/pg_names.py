"""Names the PostgreSQL store accepts (kept apart so settings need no psycopg)."""

from __future__ import annotations

import re

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""A plain lower-case identifier: a schema name that needs no quoting."""
