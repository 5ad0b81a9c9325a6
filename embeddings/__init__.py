"""Sentence embeddings: tokenizer, onnxruntime session, mean pooling and L2 norm.

One component shared by the router (intent exemplars), and later retrieval and
guardrails. At run time it needs only onnxruntime, tokenizers and numpy; the
ONNX file is exported once from the bundled weights by the setup step
(``python -m embeddings.export``, which alone imports torch).
"""

from embeddings.encoder import Embedder, EmbedderOptions
from embeddings.store import ModelFiles, ModelMissingError, locate

__all__ = ["Embedder", "EmbedderOptions", "ModelFiles", "ModelMissingError", "locate"]
