"""The waybill-contracts wheel installed alone in a clean virtual environment, once per
test session: what another team gets from ``pip install waybill-contracts``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts import build_contracts

INSTALL_TIMEOUT_S = 600


@dataclass(frozen=True, slots=True)
class ContractsVenv:
    """A virtual environment holding the built wheel and its own dependencies only."""

    python: Path
    """Its interpreter."""
    wheel: Path
    """The wheel installed in it."""
    setup_s: float
    """How long building the wheel and the environment took."""

    def run(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run this interpreter (``-E -s``: no PYTHONPATH, no user site) in ``cwd``."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        return subprocess.run(
            [str(self.python), "-E", "-s", *args],
            cwd=cwd,
            env={**clean, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _index_reachable() -> bool:
    """Whether pip reaches its package index (PyPI, or what pip is configured with)."""
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "grpcio"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return probe.returncode == 0


def _failed(what: str, result: subprocess.CompletedProcess[str]) -> None:
    """Fail, or skip outside CI when the package index cannot be reached."""
    if not os.environ.get("CI") and not _index_reachable():
        pytest.skip(f"{what}: the package index (PyPI) is unreachable and this is not CI")
    pytest.fail(
        f"{what} failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    )


@pytest.fixture(scope="session")
def contracts_venv(tmp_path_factory: pytest.TempPathFactory) -> ContractsVenv:
    """Build the wheel, make a venv without system site packages, pip install the wheel
    (with its ``validate`` extra) there; once per session."""
    started = time.monotonic()
    root = tmp_path_factory.mktemp("contracts")
    dist = root / "dist"
    built = subprocess.run(
        [
            sys.executable,
            str(build_contracts.ROOT / "scripts" / "build_contracts.py"),
            "--quiet",
            "--out",
            str(dist),
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    if built.returncode == build_contracts.EXIT_VERSION:
        pytest.fail(f"the contracts' version does not follow protos/:\n{built.stderr}")
    if built.returncode != 0:
        _failed("building the wheel", built)
    (wheel,) = dist.glob("waybill_contracts-*.whl")
    env_dir = root / "venv"
    # pip comes from this interpreter (--python): no ensurepip in the new environment.
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    installed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            f"{wheel}[validate]",
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    if installed.returncode != 0:
        _failed("installing the wheel", installed)
    return ContractsVenv(python=python, wheel=wheel, setup_s=time.monotonic() - started)
