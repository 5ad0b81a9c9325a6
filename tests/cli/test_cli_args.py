"""Argument parsing of the ``waybill`` command: help, usage errors, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import EXIT_USAGE, build_parser, main


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["up", "--help"],
        ["health", "--help"],
        ["services", "--help"],
        ["chat", "--help"],
    ],
)
def test_help_exits_zero(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: waybill" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["launch"])
    assert exc.value.code == EXIT_USAGE
    assert "invalid choice" in capsys.readouterr().err


def test_no_command_prints_help_and_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USAGE
    assert "COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "--base-port", "80"],
        ["up", "--base-port", "65530"],
        ["up", "--base-port", "x"],
        ["up", "--timeout", "0"],
        ["health", "--timeout", "-1"],
        ["chat", "--bogus"],
    ],
)
def test_bad_values_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_USAGE


def test_defaults() -> None:
    args = build_parser().parse_args(["up"])
    assert args.run_dir == Path(".waybill")
    assert args.base_port is None
    chat = build_parser().parse_args(["chat", "--customer", "acme-0002", "--run-dir", "/tmp/x"])
    assert chat.customer == "acme-0002"
    assert chat.tenant == "acme-retail"
    assert chat.run_dir == Path("/tmp/x")
