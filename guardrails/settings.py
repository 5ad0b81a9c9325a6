"""Settings of guardrails, from the environment; bad values fail at start."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from runtime import paths
from runtime.settings import ServiceSettings, SettingsError, env_float, env_int, env_str

NAME = "guardrails"
KEY_ENV = "WAYBILL_PSEUDONYM_KEY"
KEY_FILE_ENV = "WAYBILL_PSEUDONYM_KEY_FILE"
BLOCK_INPUT = 0.85
FLAG_RETRIEVED = 0.70
QUARANTINE = 0.90
THREADS = 2


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Injection score thresholds (seed 004's defaults)."""

    block_input: float = BLOCK_INPUT
    """Block a customer message scoring at least this (``WAYBILL_INJECTION_BLOCK``)."""
    flag_retrieved: float = FLAG_RETRIEVED
    """Drop retrieved or tool-returned text scoring at least this (``WAYBILL_INJECTION_FLAG``)."""
    quarantine: float = QUARANTINE
    """Quarantine a document at ingest scoring at least this (``WAYBILL_INJECTION_QUARANTINE``)."""

    @classmethod
    def from_env(cls) -> Thresholds:
        """Thresholds from the environment, each in 0..1."""
        values = {
            "block_input": env_float("WAYBILL_INJECTION_BLOCK", BLOCK_INPUT),
            "flag_retrieved": env_float("WAYBILL_INJECTION_FLAG", FLAG_RETRIEVED),
            "quarantine": env_float("WAYBILL_INJECTION_QUARANTINE", QUARANTINE),
        }
        for name, value in values.items():
            if not 0.0 < value <= 1.0:
                raise SettingsError(f"the injection threshold {name}={value} is not in (0, 1]")
        return cls(**values)


def pseudonym_key() -> bytes:
    """The secret that keys pseudonyms and canaries: ``WAYBILL_PSEUDONYM_KEY`` (hex, at
    least 32 characters; the fleet sets it from a Secret so every replica agrees), else
    the key file (``WAYBILL_PSEUDONYM_KEY_FILE``, default ``.waybill/secrets/pseudonym.key``),
    created with a random key (mode 0600) the first time."""
    raw = os.environ.get(KEY_ENV)
    if raw:
        try:
            key = bytes.fromhex(raw.strip())
        except ValueError:
            raise SettingsError(f"{KEY_ENV} is not hexadecimal") from None
        if len(key) < 16:
            raise SettingsError(f"{KEY_ENV} is shorter than 16 bytes (32 hex characters)")
        return key
    default = paths.repo_root() / ".waybill" / "secrets" / "pseudonym.key"
    path = Path(env_str(KEY_FILE_ENV, str(default)))
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        key = bytes.fromhex(path.read_text().strip())
    except FileExistsError:  # another process created it first
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"the pseudonym key file {path} is unusable ({exc})") from None
    if len(key) < 16:
        raise SettingsError(f"the pseudonym key in {path} is shorter than 16 bytes")
    return key


@dataclass(frozen=True, slots=True)
class GuardrailsSettings:
    """What guardrails reads at start."""

    service: ServiceSettings
    """What every service reads (address, deadlines, logging, faults)."""
    key: bytes
    """Keys pseudonyms and canaries (never logged)."""
    thresholds: Thresholds
    model_dir: Path
    """Where the injection classifier is (``WAYBILL_MODEL_DIR``)."""
    threads: int = THREADS
    """onnxruntime threads per classifier run (``WAYBILL_GUARDRAILS_THREADS``): two halve a
    classified message's latency on two cores (docs/guardrails.md)."""

    @classmethod
    def from_env(cls) -> GuardrailsSettings:
        """Settings from ``WAYBILL_*`` variables; SettingsError names a bad one."""
        return cls(
            service=ServiceSettings.from_env(NAME),
            key=pseudonym_key(),
            thresholds=Thresholds.from_env(),
            model_dir=paths.model_dir(),
            threads=env_int("WAYBILL_GUARDRAILS_THREADS", THREADS, minimum=1),
        )
