"""Router fixtures: the real model, the shipped exemplars and calibration, and
classifiers that are closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from embeddings import Embedder, EmbedderOptions
from router import exemplars as exemplar_files
from router.calibration import Calibration
from router.classifier import Classifier, Snapshot, snapshot_of
from router.exemplars import Exemplar
from router.settings import DEFAULT_CORPUS, DEFAULT_FOLLOW_UPS
from router.vectors import default_dir
from tests.embeddings.model import require_model

MakeClassifier = Callable[..., Classifier]


@pytest.fixture(scope="session")
def embedder(calibration: Calibration) -> Embedder:
    """The exported model in the variant the shipped calibration is for (fails clearly
    when the setup step has not run)."""
    return Embedder(require_model(), EmbedderOptions(quantized=calibration.quantized))


@pytest.fixture(scope="session")
def base_exemplars() -> list[Exemplar]:
    """What the router serves: the training corpus plus follow-ups."""
    return exemplar_files.load(DEFAULT_CORPUS) + exemplar_files.load_follow_ups(DEFAULT_FOLLOW_UPS)


@pytest.fixture(scope="session")
def base_snapshot(embedder: Embedder, base_exemplars: list[Exemplar]) -> Snapshot:
    """The production index, built once (snapshots are immutable); its vectors come
    from the setup step's build (``python -m router.vectors``)."""
    return snapshot_of(embedder, base_exemplars, vectors_dir=default_dir())


@pytest.fixture(scope="session")
def calibration() -> Calibration:
    """The shipped calibration."""
    return Calibration.load()


@pytest.fixture
async def make_classifier(
    embedder: Embedder, base_snapshot: Snapshot, calibration: Calibration
) -> AsyncIterator[MakeClassifier]:
    """Started classifiers over the production index (``follow=True`` also follows their
    store); closed after the test."""
    made: list[Classifier] = []

    def _make(**kwargs: Any) -> Classifier:
        follow = kwargs.pop("follow", False)
        classifier = Classifier(
            embedder, kwargs.pop("snapshot", base_snapshot), calibration, **kwargs
        )
        classifier.start(follow=follow)
        made.append(classifier)
        return classifier

    yield _make
    for classifier in made:
        await classifier.close()
