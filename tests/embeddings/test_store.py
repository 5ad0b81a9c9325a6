"""Finding the export: the current pointer, verification, and the message when missing."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from embeddings import store
from embeddings.store import ModelMissingError, locate, write_json_atomic
from runtime import paths


def _export(root: Path, key: str, *, verified: bool = True) -> Path:
    directory = store.family_dir(root) / key
    directory.mkdir(parents=True)
    (directory / store.ONNX_FILE).write_bytes(b"onnx")
    (directory / store.INT8_FILE).write_bytes(b"onnx-int8")
    (directory / store.TOKENIZER_FILE).write_text("{}")
    write_json_atomic(
        directory / store.MANIFEST_FILE,
        {"verified": verified, "max_seq_length": 256, "dim": 384},
    )
    return directory


def test_missing_model_names_the_setup_command(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError) as raised:
        locate(tmp_path)
    message = str(raised.value)
    assert store.SETUP_COMMAND in message
    assert store.MODEL_DIR_ENV in message


def test_the_current_pointer_selects_the_export(tmp_path: Path) -> None:
    _export(tmp_path, "old0000000000000")
    _export(tmp_path, "new0000000000000")
    write_json_atomic(store.family_dir(tmp_path) / store.CURRENT_FILE, {"key": "new0000000000000"})
    files = locate(tmp_path)
    assert files.key == "new0000000000000"
    assert files.onnx.read_bytes() == b"onnx"
    assert files.dim == 384
    assert files.max_seq_length == 256


def test_an_unverified_export_is_refused(tmp_path: Path) -> None:
    _export(tmp_path, "bad0000000000000", verified=False)
    write_json_atomic(store.family_dir(tmp_path) / store.CURRENT_FILE, {"key": "bad0000000000000"})
    with pytest.raises(ModelMissingError, match="failed verification"):
        locate(tmp_path)


def test_a_pointer_to_a_missing_export_is_refused(tmp_path: Path) -> None:
    write_json_atomic(store.family_dir(tmp_path) / store.CURRENT_FILE, {"key": "gone000000000000"})
    with pytest.raises(ModelMissingError, match="no embedding model export"):
        locate(tmp_path)


def test_model_root_follows_the_environment(tmp_path: Path) -> None:
    assert store.model_root({store.MODEL_DIR_ENV: str(tmp_path)}) == tmp_path
    assert store.model_root({}) == paths.repo_root() / ".waybill" / "models"


def test_json_is_written_whole_and_readable(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]
