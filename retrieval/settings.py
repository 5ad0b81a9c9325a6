"""Settings of retrieval, from the environment; bad values fail at start."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from embeddings.store import model_root
from runtime import paths
from runtime.settings import ServiceSettings, SettingsError, env_bool, env_float, env_int, env_str
from runtime.tenants import DEMO_TENANTS

NAME = "retrieval"
KB_DIR_ENV = "WAYBILL_KB_DIR"


def default_kb_dir(env: dict[str, str] | None = None) -> Path:
    """``$WAYBILL_KB_DIR``, else ``kb`` in ``$WAYBILL_DATA_DIR`` (default ``.waybill/data``)."""
    source = os.environ if env is None else env
    if source.get(KB_DIR_ENV):
        return Path(source[KB_DIR_ENV])
    return Path(source.get("WAYBILL_DATA_DIR") or paths.repo_root() / ".waybill" / "data") / "kb"


def default_vector_cache() -> Path:
    """``$WAYBILL_KB_VECTOR_CACHE``, else ``kb-vectors`` beside the model directory (shared by
    every knowledge base here)."""
    configured = os.environ.get("WAYBILL_KB_VECTOR_CACHE")
    return Path(configured) if configured else model_root().parent / "kb-vectors"


def tenants_from_env() -> tuple[str, ...]:
    """Clients whose documents are accepted (``WAYBILL_KB_TENANTS``, comma-separated)."""
    raw = env_str("WAYBILL_KB_TENANTS", ",".join(DEMO_TENANTS))
    found = tuple(t.strip() for t in raw.split(",") if t.strip())
    if not found:
        raise SettingsError("WAYBILL_KB_TENANTS names no tenant")
    return found


def quantized_from_env() -> bool:
    """Whether retrieval embeds with the int8-weight model (``WAYBILL_RETRIEVAL_QUANTIZED``)."""
    return env_bool("WAYBILL_RETRIEVAL_QUANTIZED", False)


def rerank_from_env() -> bool:
    """Whether Search reranks by default (``WAYBILL_RETRIEVAL_RERANK``)."""
    return env_bool("WAYBILL_RETRIEVAL_RERANK", True)


@dataclass(frozen=True, slots=True)
class RetrievalSettings:
    """What retrieval reads at start."""

    service: ServiceSettings
    """What every service reads (address, deadlines, logging, faults)."""
    kb_dir: Path
    """The knowledge base directory: versions and CURRENT (``WAYBILL_KB_DIR``)."""
    seed_dir: Path | None
    """Documents ingested when the knowledge base has no version yet
    (``WAYBILL_KB_SEED_DIR``; default the demo policies, ``""`` for none)."""
    writable: bool
    """Whether IngestDocuments and DeleteDocument may publish (``WAYBILL_KB_WRITABLE``;
    fleet replicas mount the shared index read-only and a Job publishes)."""
    tenants: tuple[str, ...]
    """Clients whose documents are accepted (``WAYBILL_KB_TENANTS``)."""
    poll_s: float
    """Seconds between checks for a newly published version (``WAYBILL_KB_POLL_S``)."""
    vector_cache: Path | None
    """Window vectors kept across knowledge bases (``WAYBILL_KB_VECTOR_CACHE``; ``""``: off)."""
    quantized: bool
    """Embed with the int8-weight model (``WAYBILL_RETRIEVAL_QUANTIZED``)."""
    rerank: bool
    """Run the reranker by default (``WAYBILL_RETRIEVAL_RERANK``)."""
    compress_min: int
    """Windows of one tenant from which its vectors are scanned as 8-bit codes
    (``WAYBILL_RETRIEVAL_COMPRESS_MIN``)."""

    @classmethod
    def from_env(cls) -> RetrievalSettings:
        """Settings from ``WAYBILL_*`` variables; SettingsError names a bad one."""
        seed = os.environ.get("WAYBILL_KB_SEED_DIR")
        seed_dir = paths.data_dir("kb") if seed is None else (Path(seed) if seed else None)
        if seed_dir is not None and not seed_dir.is_dir():
            raise SettingsError(f"WAYBILL_KB_SEED_DIR={str(seed_dir)!r} is not a directory")
        cache = os.environ.get("WAYBILL_KB_VECTOR_CACHE")
        return cls(
            service=ServiceSettings.from_env(NAME),
            kb_dir=default_kb_dir(),
            seed_dir=seed_dir,
            writable=env_bool("WAYBILL_KB_WRITABLE", True),
            tenants=tenants_from_env(),
            poll_s=env_float("WAYBILL_KB_POLL_S", 1.0, minimum=0.05),
            vector_cache=default_vector_cache()
            if cache is None
            else (Path(cache) if cache else None),
            quantized=quantized_from_env(),
            rerank=rerank_from_env(),
            compress_min=env_int("WAYBILL_RETRIEVAL_COMPRESS_MIN", 50_000, minimum=1),
        )
