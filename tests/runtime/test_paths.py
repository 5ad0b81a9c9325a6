"""The one helper that knows where the repository's folders are."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from runtime import paths

PACKAGES = (
    "cli",
    "embeddings",
    "gateway",
    "guardrails",
    "ledger",
    "llm_pool",
    "orders",
    "retrieval",
    "router",
    "runtime",
    "workers",
    "bench",
)


def test_the_root_holds_the_project_and_its_data() -> None:
    root = paths.repo_root()
    assert (root / "pyproject.toml").is_file()
    assert paths.data_dir("router", "exemplars.v1.jsonl").is_file()
    assert paths.artifacts_dir("bench") == root / "artifacts" / "bench"


def test_home_overrides_the_search(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    paths.repo_root.cache_clear()
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    try:
        assert paths.repo_root() == tmp_path.resolve()
        assert paths.data_dir("router") == tmp_path.resolve() / "data" / "router"
    finally:
        paths.repo_root.cache_clear()


def test_a_missing_home_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    paths.repo_root.cache_clear()
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "nowhere"))
    try:
        with pytest.raises(paths.LayoutError, match="WAYBILL_HOME"):
            paths.repo_root()
    finally:
        paths.repo_root.cache_clear()


def _parents_index_calls(source: str) -> list[int]:
    """Line numbers of ``<...>.parents[N]`` subscripts."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "parents"
        ):
            found.append(node.lineno)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_counts_its_way_to_the_root(package: str) -> None:
    """Only runtime.paths finds the root; a module that counts parents breaks on a move."""
    offenders = []
    for path in sorted((paths.repo_root() / package).rglob("*.py")):
        for line in _parents_index_calls(path.read_text()):
            offenders.append(f"{path.relative_to(paths.repo_root())}:{line}")
    assert offenders == []
