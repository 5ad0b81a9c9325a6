"""bench.cpu_compare: CPU per process read from /proc by working directory, the table,
and the command line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cpu_compare import Run, main, mesh_cpu, order, paired, render


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_cpu_is_read_for_the_modules_working_in_a_directory(tmp_path: Path) -> None:
    busy = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    (tmp_path / "spin.py").write_text(busy + "time.sleep(30)\n")
    child = subprocess.Popen([sys.executable, "-m", "spin"], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        seen: dict[str, float] = {}
        while time.monotonic() < deadline:
            seen = mesh_cpu(tmp_path)
            if seen.get("spin", 0.0) >= 0.25:
                break
            time.sleep(0.1)
        assert 0.25 <= seen["spin"] < 5.0
        assert "spin" not in mesh_cpu(tmp_path / "elsewhere")
    finally:
        child.kill()
        child.wait()


def test_the_table_shows_medians_per_side() -> None:
    before = [Run({"gateway": 3.0, "router": 1.0}, 10.0, 20.0, 100.0) for _ in range(3)]
    after = [Run({"gateway": 3.5, "router": 1.0}, 12.0, p95, 99.0) for p95 in (25.0, 30.0, 90.0)]
    table = render({"before": before, "after": after})
    assert "| before | 4.00 | 3.00 | 1.00 | 10.0 | 20.0, 20.0, 20.0 | 100.0 |" in table
    assert "| after | 4.50 | 3.50 | 1.00 | 12.0 | 25.0, 30.0, 90.0 | 99.0 |" in table


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--after", "."])
    assert exc.value.code == 2
    assert main(["--before", ".", "--after", ".", "--rounds", "0"]) == 2
    assert "must be positive" in capsys.readouterr().err


def test_a_side_setting_must_be_name_equals_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--before", ".", "--after", ".", "--before-env", "WAYBILL_BUDGETS"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    assert main(["--before", ".", "--after", ".", "--after-env", "=1"]) == 2


def test_each_side_leads_every_other_round() -> None:
    firsts = [order(i)[0] for i in range(4)]
    assert firsts == ["before", "after", "before", "after"]
    assert all(sorted(order(i)) == ["after", "before"] for i in range(5))


def test_the_paired_line_is_the_median_of_per_round_differences() -> None:
    before = [Run({"gateway": c}, 10.0, p95, 100.0) for c, p95 in ((3.0, 20.0), (4.0, 80.0))]
    before.append(Run({"gateway": 5.0}, None, 30.0, 100.0))
    after = [Run({"gateway": c}, 11.0, p95, 100.0) for c, p95 in ((3.5, 25.0), (3.0, 40.0))]
    after.append(Run({"gateway": 5.25}, 14.0, 36.0, 100.0))
    line = paired({"before": before, "after": after})
    # CPU: +0.5, -1.0, +0.25 -> +0.25; p50: +1.0 (the third round has no before p50);
    # p95: +5, -40, +6 -> +5
    assert line == (
        "paired (median over 3 rounds of after - before): "
        "CPU ms/turn +0.25, p50 ms +1.00, p95 ms +5.00"
    )
