import json
from pathlib import Path

from bench import plot


def _row(scenario: str, rate: float, p50: float, errors: int = 0) -> str:
    return json.dumps(
        {
            "scenario": scenario,
            "rate": rate,
            "p50_ms": p50,
            "p95_ms": p50 * 2,
            "p99_ms": p50 * 3,
            "errors": errors,
        }
    )


def test_draws_one_panel_per_scenario_with_errors(tmp_path: Path) -> None:
    runs = tmp_path / "runs.jsonl"
    runs.write_text(
        "\n".join(
            [
                _row("tracking", 200, 12),
                "not json",
                _row("tracking", 100, 8),
                _row("skeleton", 50, 5, errors=3),
            ]
        )
    )
    assert plot.main([str(runs)]) == 0
    svg = (tmp_path / "runs.svg").read_text()
    assert svg.startswith("<svg")
    assert svg.count("turn latency") == 2
    assert "3 err" in svg
    loaded = plot.load([runs])
    assert [r["rate"] for r in loaded["tracking"]] == [100, 200]


def test_nothing_to_draw_exits_1(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("hello\n")
    assert plot.main([str(empty)]) == 1
