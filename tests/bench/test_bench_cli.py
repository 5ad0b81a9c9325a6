"""The command line: usage errors, exit codes and the standard set with a stand-in launcher."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from bench import cli
from runtime import paths

REPO = paths.repo_root()
FAKE_GATEWAY = Path(__file__).resolve().parent / "fake_gateway.py"


def _main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["--scenario", "skeleton"],  # no rate/duration
        ["--rate", "5", "--duration", "1"],  # no scenario
        ["--scenario", "nope", "--rate", "5", "--duration", "1"],
        ["--scenario", "skeleton", "--rate", "0", "--duration", "1"],
        ["--scenario", "skeleton", "--rate", "5", "--duration", "1", "--concurrency", "0"],
        ["--standard", "--rates", ","],  # no rate at all
        ["--standard", "--target", "127.0.0.1:1"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == cli.EXIT_USAGE
    assert "error" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "--standard" in capsys.readouterr().out


def test_list_scenarios() -> None:
    code, out, _ = _main("--list-scenarios")
    assert code == 0
    assert "skeleton" in out
    assert "tracking" in out


def test_missing_credentials_exit_1(tmp_path: Path) -> None:
    code, out, err = _main(
        "--scenario", "skeleton", "--rate", "5", "--duration", "1", "--run-dir", str(tmp_path)
    )
    assert code == cli.EXIT_SETUP
    assert "credentials" in err
    assert out == ""


def test_unreachable_gateway_exit_1(tmp_path: Path) -> None:
    code, _, err = _main(
        "--scenario", "skeleton", "--rate", "5", "--duration", "1",
        "--target", "127.0.0.1:1", "--api-key", "k", "--quiet",
    )  # fmt: skip
    assert code == cli.EXIT_SETUP
    assert "UNAVAILABLE" in err


class _Launcher:
    """Builds a stand-in ``cli.launcher`` module around a Mesh class."""

    @staticmethod
    def install(monkeypatch: pytest.MonkeyPatch, mesh_class: type) -> None:
        module = types.ModuleType("cli.launcher")
        module.Mesh = mesh_class  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "cli.launcher", module)


class FailingMesh:
    stopped = False

    def __init__(
        self, run_dir: Path, base_port: int | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.run_dir = run_dir

    def start(self) -> None:
        raise RuntimeError("port 50060 is taken")

    def stop(self) -> None:
        FailingMesh.stopped = True


class ProcessMesh:
    """Runs the fake gateway in a subprocess the way the launcher runs the mesh."""

    last: ProcessMesh | None = None

    def __init__(
        self, run_dir: Path, base_port: int | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.run_dir = run_dir
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        ProcessMesh.last = self

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([".", "gen"])}
        self.proc = subprocess.Popen([sys.executable, str(FAKE_GATEWAY), str(self.run_dir)],
                                     cwd=REPO, env=env)  # fmt: skip
        deadline = time.monotonic() + 30
        while not (self.run_dir / "mesh.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fake gateway did not come up")
            time.sleep(0.05)

    @property
    def addresses(self) -> dict[str, str]:
        info = json.loads((self.run_dir / "mesh.json").read_text())
        return {name: s["address"] for name, s in info["services"].items()}

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=30)


def test_standard_exit_1_when_the_mesh_does_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Launcher.install(monkeypatch, FailingMesh)
    code, _, err = _main("--standard", "--run-dir", str(tmp_path), "--out-dir", str(tmp_path))
    assert code == cli.EXIT_SETUP
    assert "port 50060 is taken" in err
    assert FailingMesh.stopped
    assert not list(tmp_path.glob("*.jsonl"))


def test_standard_exit_1_without_a_launcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cli.launcher", None)  # makes the import fail
    code, _, err = _main("--standard", "--run-dir", str(tmp_path))
    assert code == cli.EXIT_SETUP
    assert "launcher" in err


def test_standard_runs_both_rates_and_writes_jsonl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Launcher.install(monkeypatch, ProcessMesh)
    out_dir = tmp_path / "artifacts"
    code, out, err = _main(
        "--standard", "--run-dir", str(tmp_path / "run"), "--out-dir", str(out_dir),
        "--durations", "0.5", "--warmup", "0", "--rates", "20,40", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert ProcessMesh.last is not None
    assert ProcessMesh.last.proc is not None
    assert ProcessMesh.last.proc.returncode is not None  # the mesh was stopped
    # Limits far above the bench's rates, still on (each turn pays for its admission).
    assert ProcessMesh.last.env["WAYBILL_RATELIMIT_USER_RPM"] == str(10**9)
    (artifact,) = out_dir.glob("*.jsonl")
    runs = [json.loads(line) for line in artifact.read_text().splitlines()]
    assert [r["rate"] for r in runs] == [20.0, 40.0]
    assert [r["sent"] for r in runs] == [10, 20]
    assert all(r["scenario"] == "skeleton" for r in runs)
    assert all(r["sent"] == r["completed"] + r["errors"] for r in runs)
    table = out.splitlines()[-4:]
    assert table[0].split()[:3] == ["scenario", "rate", "sent"]
    assert [row.split()[1] for row in table[2:]] == ["20", "40"]
