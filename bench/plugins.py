"""Scenarios with a runner of their own (``bench/scenario_<name>.py``).

Some benchmarks are not gateway turns (a classifier over gRPC, the LLM pool
against Triton, the REST edge against the gateway). Each lives in its own
module with ``NAME`` (the scenario name), ``DESCRIPTION`` and
``main(argv) -> int``; ``python -m bench --scenario NAME ...`` hands it the
full argument list, so no other module changes when one is added.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import bench


@dataclass(frozen=True, slots=True)
class Plugin:
    """A scenario with its own runner."""

    name: str
    description: str
    main: Callable[[Sequence[str]], int]


def discover() -> dict[str, Plugin]:
    """Every ``bench/scenario_*.py`` module, by scenario name."""
    found: dict[str, Plugin] = {}
    for info in pkgutil.iter_modules(bench.__path__):
        if not info.name.startswith("scenario_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        found[module.NAME] = Plugin(module.NAME, module.DESCRIPTION, module.main)
    return found


def requested(argv: Sequence[str]) -> str | None:
    """The value of ``--scenario`` in ``argv``, if any."""
    for i, arg in enumerate(argv):
        if arg == "--scenario" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--scenario="):
            return arg.split("=", 1)[1]
    return None
