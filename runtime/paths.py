"""Where the repository's folders are: the one place that knows.

Every module that reads shipped data (exemplars, calibration, label mappings),
writes run files (``.waybill/``) or reports (``artifacts/``) asks here instead
of counting ``parents[...]`` from its own file, so moving a module can never
silently point it outside the repository. The root is found by walking up from
this file to the folder that holds ``pyproject.toml`` and ``data/``; an
installed image without the repository sets ``WAYBILL_HOME`` (and, where the
model files live apart, ``WAYBILL_MODEL_DIR``). ``WAYBILL_DATA_DIR`` is something
else: the writable state of a running service (``.waybill/data``).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

HOME_ENV = "WAYBILL_HOME"
MODEL_ENV = "WAYBILL_MODEL_DIR"
SHARED_DATA_ENV = "WAYBILL_SHARED_DATA"


class LayoutError(RuntimeError):
    """The repository (or the folder that stands in for it) cannot be found."""


def _is_root(candidate: Path) -> bool:
    return (candidate / "pyproject.toml").is_file() and (candidate / "data").is_dir()


@cache
def repo_root() -> Path:
    """The repository root: ``$WAYBILL_HOME``, else the nearest folder above this
    module holding ``pyproject.toml`` and ``data/``; LayoutError if neither."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        root = Path(configured).resolve()
        if not root.is_dir():
            raise LayoutError(f"{HOME_ENV}={configured} is not a directory")
        return root
    here = Path(__file__).resolve()
    for candidate in here.parents:
        if _is_root(candidate):
            return candidate
    raise LayoutError(
        f"no repository found above {here} (a folder with pyproject.toml and data/); set {HOME_ENV}"
    )


def data_dir(*parts: str) -> Path:
    """Shipped, read-only data: ``<root>/data/<parts>``."""
    return repo_root().joinpath("data", *parts)


def model_dir() -> Path:
    """Exported model files: ``$WAYBILL_MODEL_DIR`` or ``<root>/.waybill/models``."""
    configured = os.environ.get(MODEL_ENV)
    return Path(configured) if configured else repo_root() / ".waybill" / "models"


def artifacts_dir(*parts: str) -> Path:
    """Reports, plots and screenshots: ``<root>/artifacts/<parts>``."""
    return repo_root().joinpath("artifacts", *parts)


def shared_data_dir() -> Path:
    """External data sets: ``$WAYBILL_SHARED_DATA`` or ``<root>/../shared/data``."""
    configured = os.environ.get(SHARED_DATA_ENV)
    return Path(configured) if configured else repo_root().parent / "shared" / "data"
