"""The run-time embedder against the torch vectors recorded at export, and its batch API."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from embeddings import Embedder, EmbedderOptions, ModelFiles
from embeddings.export import INT8_MIN_COSINE, INT8_MIN_MEAN_COSINE, MAX_ABS_DIFF, MIN_COSINE


def test_export_was_verified_against_torch(model_files: ModelFiles) -> None:
    verification = model_files.manifest["verification"]
    assert model_files.manifest["verified"] is True
    assert verification["min_cosine"] >= MIN_COSINE
    assert verification["max_abs_diff"] <= MAX_ABS_DIFF


def test_vectors_match_the_torch_reference(embedder: Embedder, model_files: ModelFiles) -> None:
    sentences = model_files.manifest["verification"]["sentences"]
    reference = np.load(model_files.reference)
    ours = embedder.embed(sentences)
    assert ours.shape == reference.shape == (len(sentences), 384)
    assert float(np.abs(ours - reference).max()) <= MAX_ABS_DIFF
    assert float((ours * reference).sum(axis=1).min()) >= MIN_COSINE


def test_int8_vectors_stay_close_to_the_reference(model_files: ModelFiles) -> None:
    sentences = model_files.manifest["verification"]["sentences"]
    reference = np.load(model_files.reference)
    int8 = Embedder(model_files, EmbedderOptions(quantized=True))
    cosine = (int8.embed(sentences) * reference).sum(axis=1)
    assert float(cosine.mean()) >= INT8_MIN_MEAN_COSINE
    assert float(cosine.min()) >= INT8_MIN_COSINE
    assert int8.version.endswith("-int8")
    assert model_files.manifest["verification"]["int8_mean_cosine"] == pytest.approx(
        float(cosine.mean()), abs=1e-4
    )


def test_batches_give_the_same_vectors_as_single_texts(embedder: Embedder) -> None:
    texts = ["where is my parcel?", "a much longer message about a refund for a broken lamp", "hi"]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, rtol=1e-5)


def test_long_lists_are_split_and_keep_their_order(model_files: ModelFiles) -> None:
    small = Embedder(model_files, EmbedderOptions(max_batch=4))
    texts = [f"order number {i} " + "word " * (i % 7) for i in range(11)]
    np.testing.assert_allclose(
        small.embed(texts), np.vstack([small.embed([t]) for t in texts]), atol=1e-5
    )


def test_empty_input_gives_an_empty_matrix(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, 384)


def test_run_time_needs_no_torch() -> None:
    """The router's process imports onnxruntime, tokenizers, numpy and faiss only."""
    code = textwrap.dedent(
        """
        import sys
        import router.server
        from embeddings import Embedder
        Embedder.load().embed(["where is my order?"])
        heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers")
                       if m in sys.modules)
        print(",".join(heavy) or "none")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none"
