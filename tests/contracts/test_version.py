"""The contracts' version follows the .proto files, and the wheel's dependency floors are
the versions the code was generated with."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest

from scripts import build_contracts as bc


def _copy(tmp_path: Path) -> Path:
    """A repository with just what the version check reads."""
    for rel in (*bc.PROTO_ROOTS, bc.PROJECT):
        shutil.copytree(bc.ROOT / rel, tmp_path / rel)
    return tmp_path


def _change_a_proto(root: Path) -> None:
    proto = root / "protos" / "waybill" / "gateway" / "v1" / "gateway_service.proto"
    proto.write_text(proto.read_text() + "\n// A comment changes the shipped sources too.\n")


def test_the_recorded_version_follows_protos() -> None:
    assert bc.check() == bc.read_version()


def test_a_changed_proto_without_a_bump_fails(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _change_a_proto(root)
    with pytest.raises(bc.ContractsError, match="bump"):
        bc.check(root)
    with pytest.raises(bc.ContractsError, match="must be greater"):
        bc.record(root)


def test_a_bump_recorded_passes(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _change_a_proto(root)
    major, minor, _ = bc.parse_version(bc.read_version(root))
    (root / bc.VERSION_FILE).write_text(f"{major}.{minor + 1}.0\n")
    with pytest.raises(bc.ContractsError, match="--record"):
        bc.check(root)
    bc.record(root)
    assert bc.check(root) == f"{major}.{minor + 1}.0"


def test_a_version_that_is_not_semver_fails(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / bc.VERSION_FILE).write_text("1.0\n")
    with pytest.raises(bc.ContractsError, match=r"MAJOR\.MINOR\.PATCH"):
        bc.check(root)


def test_the_dependency_floors_are_the_generated_code_versions() -> None:
    project = tomllib.loads((bc.ROOT / bc.PROJECT / "pyproject.toml").read_text())["project"]
    floors = dict(re.findall(r"^([a-z-]+)>=([0-9.]+)", d)[0] for d in project["dependencies"])
    gen = bc.ROOT / bc.GEN
    grpc_versions = {
        m.group(1)
        for p in gen.rglob("*_pb2_grpc.py")
        if (m := re.search(r"GRPC_GENERATED_VERSION = '([0-9.]+)'", p.read_text()))
    }
    protobuf_versions = {
        m.group(1)
        for p in gen.rglob("*_pb2.py")
        if (m := re.search(r"# Protobuf Python Version: ([0-9.]+)", p.read_text()))
    }
    assert grpc_versions == {floors["grpcio"]}
    assert protobuf_versions == {floors["protobuf"]}
