import numpy as np

from embeddings.encoder import CACHE_LOOKUPS, Embedder, EmbedderOptions
from embeddings.store import ModelFiles


def _count(result: str) -> float:
    return float(CACHE_LOOKUPS.labels(result)._value.get())


def test_repeated_texts_come_from_the_cache_with_the_same_vectors(model_files: ModelFiles) -> None:
    plain = Embedder(model_files)
    cached = Embedder(model_files, EmbedderOptions(cache_size=2))
    texts = ["where is my order?", "when will it arrive?", "where is my order?"]
    hits, misses = _count("hit"), _count("miss")
    first = cached.embed(texts)
    assert (_count("hit") - hits, _count("miss") - misses) == (0, 3)
    again = cached.embed(["when will it arrive?"])
    assert _count("hit") - hits == 1
    np.testing.assert_allclose(first, plain.embed(texts), atol=1e-6)
    np.testing.assert_array_equal(again[0], first[1])


def test_least_recently_used_texts_are_evicted(model_files: ModelFiles) -> None:
    cached = Embedder(model_files, EmbedderOptions(cache_size=2))
    cached.embed(["a parcel", "a refund"])
    cached.embed(["a parcel"])  # now the most recently used
    cached.embed(["a photo"])  # evicts "a refund"
    misses = _count("miss")
    cached.embed(["a parcel"])
    assert _count("miss") == misses
    cached.embed(["a refund"])
    assert _count("miss") == misses + 1
