"""``waybill router add-exemplars`` against a real router servicer: exit statuses,
the tenant's key from a keys file, and an idempotent rerun."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
from waybill.router.v1 import router_service_pb2_grpc as pb_grpc

from cli import main as cli_main
from cli import router_admin
from router.admin_keys import AdminKey, AdminKeys, digest
from router.service import RouterServicer
from runtime.server import Registration
from tests.conftest import StartServer
from tests.router.conftest import MakeClassifier

TENANT = "acme-retail"
KEY = "wbra_cli_test_key"


def _keys_file(path: Path, key: str = KEY) -> Path:
    path.write_text(json.dumps({"keys": [{"tenant_id": TENANT, "api_key": key}]}))
    return path


def _exemplars(path: Path) -> Path:
    rows = [
        {"text": "the amber drum is stuck at the port", "intent": "INTENT_TRACKING_STATUS"},
        {"text": "amber drum still at port?", "intent": "INTENT_TRACKING_STATUS"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


async def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    parser = cli_main.build_parser()
    args = parser.parse_args(list(argv))
    code = await asyncio.to_thread(router_admin.run, args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
async def router_address(serve: StartServer, make_classifier: MakeClassifier) -> str:
    servicer = RouterServicer(
        make_classifier(), admin_keys=AdminKeys([AdminKey(TENANT, digest(KEY), "cli")])
    )
    return await serve(
        "router",
        [
            Registration(
                "waybill.router.v1.RouterService",
                pb_grpc.add_RouterServiceServicer_to_server,
                servicer,
            )
        ],
    )


async def test_adds_and_a_rerun_adds_nothing_twice(router_address: str, tmp_path: Path) -> None:
    keys = _keys_file(tmp_path / "keys.json")
    rows = _exemplars(tmp_path / "rows.jsonl")
    argv = ("router", "add-exemplars", "--tenant", TENANT, "--key-file", str(keys))
    code, out, err = await _cli(*argv, "--router", router_address, str(rows))
    assert (code, err) == (0, "")
    assert "+t" in out
    again = await _cli(*argv, "--router", router_address, str(rows))
    assert again == (0, out, "")
    assert KEY not in out


async def test_a_wrong_key_exits_3_and_bad_input_exits_2(
    router_address: str, tmp_path: Path
) -> None:
    rows = _exemplars(tmp_path / "rows.jsonl")
    wrong = (tmp_path / "bare-key").resolve()
    wrong.write_text("wbra_not_the_key\n")
    base = ("router", "add-exemplars", "--tenant", TENANT, "--router", router_address)
    code, _, err = await _cli(*base, "--key-file", str(wrong), str(rows))
    assert code == router_admin.EXIT_NOT_AUTHORISED
    assert "UNAUTHENTICATED" in err
    assert "wbra_not_the_key" not in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hello there", "intent": "NOT_AN_INTENT"}\n')
    keys = _keys_file(tmp_path / "keys.json")
    assert (await _cli(*base, "--key-file", str(keys), str(bad)))[0] == router_admin.EXIT_USAGE
    code, _, err = await _cli(*base, "--key-file", str(tmp_path / "missing"), str(rows))
    assert code == router_admin.EXIT_USAGE
    assert "no admin key" in err


def test_help_names_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        cli_main.main(["router", "add-exemplars", "--help"])
    assert raised.value.code == 0
    assert "3 not authorised" in " ".join(capsys.readouterr().out.split())
