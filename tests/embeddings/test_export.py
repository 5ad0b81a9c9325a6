"""The export step: keyed by the source files, and a no-op when current."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from embeddings import ModelFiles
from embeddings.export import SOURCE_FILES, export_key, source_dir


def test_the_key_changes_with_the_source_files(tmp_path: Path) -> None:
    source = source_dir()
    copy = tmp_path / "model"
    for name in SOURCE_FILES:
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == "model.safetensors":
            target.symlink_to(source / name)
        else:
            shutil.copy2(source / name, target)
    assert export_key(copy) == export_key(source)
    config = copy / "config.json"
    config.write_text(config.read_text().replace('"hidden_act"', '"hidden_act" '))
    assert export_key(copy) != export_key(source)


def test_check_reports_the_current_export(model_files: ModelFiles) -> None:
    assert model_files.key == export_key(source_dir())
    result = subprocess.run(
        [sys.executable, "-m", "embeddings.export", "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "current" in result.stdout
