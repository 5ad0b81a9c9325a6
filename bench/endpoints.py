"""Where the gateway is and which keys to call it with.

A running mesh describes itself in ``<run_dir>/mesh.json`` (written by the
launcher): service addresses and the credentials file. Explicit flags win over
it, and the mesh table's default address is the last resort.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime import credentials, mesh

DEMO_TENANTS: tuple[str, ...] = ("acme-retail", "globex-home")
CLI_KEY_LABEL = "cli"


class SetupError(RuntimeError):
    """The run cannot start: no gateway, no keys, no customers."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    """A gateway address and the keys to use, by tenant label."""

    target: str
    keys: dict[str, str]


def read_mesh_json(run_dir: Path) -> dict[str, Any] | None:
    """The launcher's ``mesh.json`` in ``run_dir``, or ``None`` when there is none."""
    path = run_dir / "mesh.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SetupError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SetupError(f"{path} is not a JSON object")
    return data


def _gateway_from(info: dict[str, Any] | None) -> str | None:
    if info is None:
        return None
    entry = info.get("services", {}).get("gateway", {})
    address = entry.get("address") if isinstance(entry, dict) else None
    return address if isinstance(address, str) and address else None


def credentials_path(run_dir: Path, info: dict[str, Any] | None) -> Path:
    """The credentials file: mesh.json's, else ``$WAYBILL_CREDENTIALS_FILE``, else the run dir's."""
    if info is not None and isinstance(info.get("credentials"), str):
        path = Path(info["credentials"])
        # A relative path in mesh.json is relative to the run dir that holds it.
        return path if path.is_absolute() else run_dir / path
    if env := os.environ.get(credentials.CREDENTIALS_ENV):
        return Path(env)
    return run_dir / "credentials.json"


def tenant_keys(path: Path, tenants: tuple[str, ...] = DEMO_TENANTS) -> dict[str, str]:
    """One key per tenant found in ``path``; tenants without a key are skipped."""
    if not path.exists():
        raise SetupError(f"no credentials file at {path} (is the mesh running? or pass --api-key)")
    keys: dict[str, str] = {}
    for tenant in tenants:
        try:
            keys[tenant] = credentials.key_for(path, tenant)
        except KeyError:
            continue
        except (OSError, ValueError) as exc:
            raise SetupError(f"cannot read credentials {path}: {exc}") from exc
    if not keys:
        raise SetupError(f"{path} holds no key for any of {', '.join(tenants)}")
    return keys


def resolve(
    run_dir: Path,
    *,
    target: str | None = None,
    api_key: str | None = None,
    tenants: tuple[str, ...] = DEMO_TENANTS,
) -> Endpoints:
    """The gateway and keys for a run against an already running mesh."""
    info = read_mesh_json(run_dir)
    address = target or _gateway_from(info) or mesh.spec("gateway").address()
    if api_key:
        return Endpoints(address, {CLI_KEY_LABEL: api_key})
    return Endpoints(address, tenant_keys(credentials_path(run_dir, info), tenants))
