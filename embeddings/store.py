"""Where the exported model lives, and how a process finds the current export.

Layout under the model directory (``$WAYBILL_MODEL_DIR``, default
``<repo>/.waybill/models``)::

    all-minilm-l6-v2/
      current.json          {"key": ...}: the export in use (replaced atomically)
      <key>/model.onnx      the graph: token ids -> last hidden state (fp32)
      <key>/model.int8.onnx the same with int8 weights (dynamic, per channel): ~4x faster
      <key>/tokenizer.json  the model's own tokenizer
      <key>/export.json     provenance and the verification against torch
      <key>/reference.npy   torch vectors of the verification sentences

``<key>`` hashes the source weights, tokenizer and config with the export
code's version, so new weights or a changed export produce a new directory
and an old export is never mistaken for a current one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime import paths

MODEL_NAME = "all-minilm-l6-v2"
"""Directory name of the model family under the model directory."""
MODEL_DIR_ENV = "WAYBILL_MODEL_DIR"
SETUP_COMMAND = "bash scripts/setup.d/20-embedding-model.sh"
"""What a user runs to create the export (``make up``/``make test`` run it too)."""
CURRENT_FILE = "current.json"
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "export.json"
REFERENCE_FILE = "reference.npy"


class ModelMissingError(RuntimeError):
    """The exported model is not where it should be; the message names the fix."""


def model_root(env: dict[str, str] | None = None) -> Path:
    """The model directory: ``$WAYBILL_MODEL_DIR`` or ``<repo>/.waybill/models``."""
    source = os.environ if env is None else env
    configured = source.get(MODEL_DIR_ENV, "")
    return Path(configured) if configured else paths.repo_root() / ".waybill" / "models"


@dataclass(frozen=True, slots=True)
class ModelFiles:
    """The files of one verified export."""

    directory: Path
    """``<model dir>/all-minilm-l6-v2/<key>``."""
    key: str
    """Hash of the source weights, tokenizer, config and export code version."""
    manifest: dict[str, Any]
    """The parsed ``export.json``."""

    @property
    def onnx(self) -> Path:
        """The ONNX graph."""
        return self.directory / ONNX_FILE

    @property
    def onnx_int8(self) -> Path:
        """The int8-weight graph (MatMul weights quantized per channel)."""
        return self.directory / INT8_FILE

    @property
    def tokenizer(self) -> Path:
        """The tokenizer definition."""
        return self.directory / TOKENIZER_FILE

    @property
    def reference(self) -> Path:
        """Torch vectors of the verification sentences (``manifest['sentences']``)."""
        return self.directory / REFERENCE_FILE

    @property
    def max_seq_length(self) -> int:
        """Tokens per text the model was trained with; longer texts are truncated."""
        return int(self.manifest["max_seq_length"])

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.manifest["dim"])


def family_dir(root: Path) -> Path:
    """``<root>/all-minilm-l6-v2``."""
    return root / MODEL_NAME


def _missing(message: str) -> ModelMissingError:
    return ModelMissingError(
        f"{message}. Export the embedding model first: `{SETUP_COMMAND}`"
        f" (`make up` and `make test` run it), or point {MODEL_DIR_ENV} at a directory"
        " that holds an export."
    )


def read_manifest(directory: Path) -> dict[str, Any]:
    """``export.json`` of an export directory; ModelMissingError if absent or unverified."""
    path = directory / MANIFEST_FILE
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise _missing(f"no embedding model export at {directory}") from None
    except (OSError, ValueError) as exc:
        raise _missing(f"unreadable {path} ({exc})") from None
    if not manifest.get("verified"):
        raise _missing(f"the export at {directory} failed verification against torch")
    for name in (ONNX_FILE, INT8_FILE, TOKENIZER_FILE):
        if not (directory / name).is_file():
            raise _missing(f"{directory / name} is missing")
    return manifest


def locate(root: Path | None = None) -> ModelFiles:
    """The current verified export under ``root`` (default: :func:`model_root`)."""
    base = family_dir(model_root() if root is None else root)
    pointer = base / CURRENT_FILE
    try:
        key = str(json.loads(pointer.read_text())["key"])
    except FileNotFoundError:
        raise _missing(
            f"no embedding model export under {base} ({CURRENT_FILE} is missing)"
        ) from None
    except (OSError, ValueError, KeyError) as exc:
        raise _missing(f"unreadable {pointer} ({exc})") from None
    directory = base / key
    return ModelFiles(directory=directory, key=key, manifest=read_manifest(directory))


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON so that a concurrent reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these files are not secrets
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
