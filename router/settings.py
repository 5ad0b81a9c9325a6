"""Router settings from the environment; bad values fail at start."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from embeddings.store import model_root
from router import vectors
from router.batcher import BatchOptions
from router.calibration import DEFAULT_PATH as DEFAULT_CALIBRATION
from runtime import paths
from runtime.settings import SettingsError, env_bool, env_float, env_int, env_str

DATA = paths.data_dir("router")
DEFAULT_EXEMPLARS = DATA / "exemplars.v1.jsonl"
"""The hand-written exemplars (a supplement: their DEV portion is part of the corpus)."""
DEFAULT_CORPUS = DATA / "corpus.v2.jsonl"
"""The training corpus the router serves (``python -m router.corpus`` builds it)."""
DEFAULT_FOLLOW_UPS = DATA / "follow_ups.jsonl"
ADDED_FILE = "added-exemplars.jsonl"
DEFAULT_STORE_SCHEMA = "waybill_router"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """What the router reads at start."""

    model_dir: Path
    """Model directory holding the ONNX export (``WAYBILL_MODEL_DIR``)."""
    exemplars: Path = DEFAULT_CORPUS
    """The labelled exemplar file the index serves (``WAYBILL_ROUTER_EXEMPLARS``)."""
    follow_ups: Path = DEFAULT_FOLLOW_UPS
    """Referring follow-ups (``WAYBILL_ROUTER_FOLLOW_UPS``)."""
    calibration: Path = DEFAULT_CALIBRATION
    """Confidence model and threshold (``WAYBILL_ROUTER_CALIBRATION``)."""
    added_exemplars: Path | None = None
    """The embedded store of tenants' added exemplars: ``$WAYBILL_DATA_DIR/router/``;
    None keeps them in memory only. Unused when ``store_dsn`` is set."""
    store_dsn: str = field(default="", repr=False)
    """PostgreSQL the replicas of a fleet share added exemplars in
    (``WAYBILL_ROUTER_STORE_DSN``; may hold a password, so never shown)."""
    store_schema: str = DEFAULT_STORE_SCHEMA
    """Schema of the store's tables (``WAYBILL_ROUTER_STORE_SCHEMA``)."""
    store_poll_s: float = 2.0
    """Most seconds before a replica serves another's additions when a change notice
    is lost (``WAYBILL_ROUTER_STORE_POLL_S``)."""
    admin_keys: Path | None = None
    """Hashed admin keys that may call AddExemplars (``WAYBILL_ROUTER_ADMIN_KEYS``);
    None refuses every AddExemplars."""
    batch: BatchOptions = field(default_factory=BatchOptions)
    """Micro-batching (``WAYBILL_ROUTER_MAX_BATCH``, ``WAYBILL_ROUTER_BATCH_WINDOW_MS``,
    ``WAYBILL_ROUTER_MAX_QUEUE``)."""
    threads: int = 1
    """onnxruntime threads per model run (``WAYBILL_ROUTER_THREADS``)."""
    embedding_cache: int = 10_000
    """Vectors cached for repeated texts (``WAYBILL_ROUTER_EMBEDDING_CACHE``; 0 = off)."""
    index_dir: Path | None = None
    """Where the exemplar vectors are built once and loaded (``WAYBILL_ROUTER_INDEX_DIR``;
    default ``router-index`` beside the model directory)."""
    quantized: bool = True
    """Run the int8-weight model (``WAYBILL_ROUTER_QUANTIZED``); the calibration file must
    be fitted for the same variant."""

    @classmethod
    def from_env(cls) -> RouterSettings:
        """Settings from ``WAYBILL_*`` variables."""
        data_dir = os.environ.get("WAYBILL_DATA_DIR", "")
        schema = env_str("WAYBILL_ROUTER_STORE_SCHEMA", DEFAULT_STORE_SCHEMA)
        if not _SCHEMA_NAME.match(schema):
            raise SettingsError(
                f"WAYBILL_ROUTER_STORE_SCHEMA={schema!r}: use lower-case letters, digits and"
                " underscores (at most 48, not starting with a digit)"
            )
        poll_s = env_float("WAYBILL_ROUTER_STORE_POLL_S", 2.0, minimum=0.05)
        admin_keys = os.environ.get("WAYBILL_ROUTER_ADMIN_KEYS", "")
        return cls(
            model_dir=model_root(),
            exemplars=Path(env_str("WAYBILL_ROUTER_EXEMPLARS", str(DEFAULT_CORPUS))),
            follow_ups=Path(env_str("WAYBILL_ROUTER_FOLLOW_UPS", str(DEFAULT_FOLLOW_UPS))),
            calibration=Path(env_str("WAYBILL_ROUTER_CALIBRATION", str(DEFAULT_CALIBRATION))),
            added_exemplars=Path(data_dir) / "router" / ADDED_FILE if data_dir else None,
            store_dsn=os.environ.get("WAYBILL_ROUTER_STORE_DSN", ""),
            store_schema=schema,
            store_poll_s=poll_s,
            admin_keys=Path(admin_keys) if admin_keys else None,
            batch=BatchOptions(
                max_batch=env_int("WAYBILL_ROUTER_MAX_BATCH", 32, minimum=1),
                window_ms=env_float("WAYBILL_ROUTER_BATCH_WINDOW_MS", 2.0),
                max_queue=env_int("WAYBILL_ROUTER_MAX_QUEUE", 2048, minimum=1),
            ),
            threads=env_int("WAYBILL_ROUTER_THREADS", 1, minimum=1),
            embedding_cache=env_int("WAYBILL_ROUTER_EMBEDDING_CACHE", 10_000, minimum=0),
            quantized=env_bool("WAYBILL_ROUTER_QUANTIZED", True),
            index_dir=vectors.default_dir(),
        )
