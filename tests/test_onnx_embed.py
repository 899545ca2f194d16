"""The int8 ONNX embedder: spec handling and batching (fast), and against the float model (slow: exports it)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import onnx_embed
from rag.embed import DEFAULT_MODEL, load_embedder, model_identity, resolve_model_path
from rag.errors import RagError
from rag.index import BuildSettings, chunk_for_model, embedding_text
from rag.ingest import read_document
from rag.onnx_embed import OnnxEmbedder

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"


def _model_dir() -> Path:
    return Path(resolve_model_path(DEFAULT_MODEL))


# --- fast: no export -------------------------------------------------------------------------------------------------


def test_model_identity_keeps_onnx_apart_from_the_float_model() -> None:
    assert model_identity("onnx-int8:all-MiniLM-L6-v2") == f"onnx-int8:{DEFAULT_MODEL}"
    assert model_identity("onnx-int8:default") == f"onnx-int8:{DEFAULT_MODEL}"
    assert model_identity("onnx-int8:") == f"onnx-int8:{DEFAULT_MODEL}"
    assert model_identity("onnx-int8:all-MiniLM-L6-v2") != model_identity(DEFAULT_MODEL)
    path = _model_dir()
    assert model_identity(f"onnx-int8:{path}") == f"onnx-int8:{path.resolve()}"


def test_base_spec_and_model_dir() -> None:
    assert onnx_embed.base_spec("onnx-int8:") == "default"
    assert onnx_embed.base_spec("onnx-int8:/some/path") == "/some/path"
    assert onnx_embed.local_model_dir("onnx-int8:all-MiniLM-L6-v2"[len("onnx-int8:") :]) == _model_dir().resolve()
    with pytest.raises(RagError, match="does not download"):
        onnx_embed.local_model_dir("no-such-org/no-such-model-anywhere")


def test_cache_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_ONNX_CACHE", str(tmp_path / "x"))
    assert onnx_embed.cache_root() == tmp_path / "x"
    monkeypatch.delenv("RAG_ONNX_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert onnx_embed.cache_root() == tmp_path / "rag" / "onnx"


def test_model_hash_follows_the_model_files(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "README.md").write_text("not part of the model")
    first = onnx_embed.model_hash(tmp_path)
    (tmp_path / "README.md").write_text("edited")
    assert onnx_embed.model_hash(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    assert onnx_embed.model_hash(tmp_path) != first


def test_a_failed_export_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")

    def broken(model_dir: Path, out: Path) -> None:
        out.write_bytes(b"half a model")
        raise RuntimeError("exporter gave up")

    monkeypatch.setattr(onnx_embed, "export_float", broken)
    with pytest.raises(RagError, match="exporter gave up"):
        onnx_embed.ensure_int8_model(model, tmp_path / "cache")
    (entry,) = (tmp_path / "cache").iterdir()
    assert sorted(p.name for p in entry.iterdir()) == [".lock"]


def test_pooling_of_the_bundled_model_is_mean_then_normalize() -> None:
    assert onnx_embed._pooling(_model_dir()) == ("mean", True)


class _FakeSession:
    """Token embeddings that depend only on the token id, so pooled vectors ignore padding and batching."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.widths: list[int] = []
        self.table = np.random.default_rng(0).standard_normal((30522, dimension)).astype(np.float32)

    def run(self, _outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        ids = feeds["input_ids"]
        self.widths.append(ids.shape[1])
        tokens = self.table[ids]
        tokens[feeds["attention_mask"] == 0] = 1e3  # padding must not leak into the mean
        return [tokens]


def _fake_embedder() -> tuple[OnnxEmbedder, _FakeSession]:
    from transformers import AutoTokenizer

    embedder = OnnxEmbedder.__new__(OnnxEmbedder)
    session = _FakeSession(16)
    embedder.name = "onnx-int8:fake"
    embedder.dimension = 16
    embedder.max_seq_length = 32
    embedder.pooling = "mean"
    embedder._tokenizer = AutoTokenizer.from_pretrained(str(_model_dir()))
    embedder._pad_id = 0
    embedder._session = session
    embedder._inputs = ["input_ids", "attention_mask", "token_type_ids"]
    return embedder, session


def test_encode_batches_by_length_and_restores_order() -> None:
    embedder, session = _fake_embedder()
    texts = [" ".join(["word"] * n) + f" {n}" for n in (3, 30, 1, 12, 7, 25, 2, 40)]
    one_by_one = np.vstack([embedder.encode([t], batch_size=1) for t in texts])
    session.widths.clear()
    batched = embedder.encode(texts, batch_size=3)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert session.widths == sorted(session.widths, reverse=True)  # longest first: padding stays small
    assert max(session.widths) == embedder.max_seq_length  # the 40-word text was truncated
    assert embedder.encode([]).shape == (0, 16)


# --- slow: exports and quantises the bundled model into a temporary cache --------------------------------------------


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def int8(onnx_cache: Path) -> OnnxEmbedder:
    return OnnxEmbedder("onnx-int8:all-MiniLM-L6-v2", cache_dir=onnx_cache)


@pytest.fixture(scope="module")
def float_embedder() -> Any:
    return load_embedder(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def seed_chunks(float_embedder: Any) -> list[str]:
    settings = BuildSettings()
    texts: list[str] = []
    for path in sorted(CORPUS.glob("*.txt")):
        doc = read_document(path)
        texts += [embedding_text(c, doc, True) for c in chunk_for_model(doc, settings, float_embedder)]
    assert len(texts) > 20
    return texts


@pytest.mark.slow
def test_int8_vectors_stay_close_to_the_float_ones(
    int8: OnnxEmbedder, float_embedder: Any, seed_chunks: list[str]
) -> None:
    reference = float_embedder.encode(seed_chunks)
    vectors = int8.encode(seed_chunks, batch_size=16)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    cosine = np.sum(vectors * reference, axis=1)
    assert cosine.min() >= 0.97, cosine.min()
    assert cosine.mean() >= 0.98, cosine.mean()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Each chunk's nearest float vector is its own.
    assert (np.argmax(vectors @ reference.T, axis=1) == np.arange(len(seed_chunks))).all()


@pytest.mark.slow
def test_order_is_preserved(int8: OnnxEmbedder, seed_chunks: list[str]) -> None:
    texts = seed_chunks + ["Who resumed the talks?", "Short."]
    shuffled = list(range(len(texts)))
    random.Random(7).shuffle(shuffled)
    # One text per batch: every vector is independent of its neighbours, so rows must match exactly.
    base = int8.encode(texts, batch_size=1)
    np.testing.assert_allclose(int8.encode([texts[i] for i in shuffled], batch_size=1), base[shuffled], atol=1e-6)
    # Real batches: dynamic quantisation scales each batch by its own activation range, so a vector moves
    # a little with its batch neighbours (cosine 0.99 typical, 0.98 worst measured on these chunks; near-empty
    # texts move most), but each row is still its own text's.
    again = int8.encode([texts[i] for i in shuffled], batch_size=8)
    assert np.sum(again * base[shuffled], axis=1).min() > 0.97
    assert (np.argmax(again @ base.T, axis=1) == np.array(shuffled)).all()


@pytest.mark.slow
def test_matches_the_float_embedder_interface(int8: OnnxEmbedder, float_embedder: Any) -> None:
    assert int8.name == "onnx-int8:all-MiniLM-L6-v2"
    assert int8.dimension == float_embedder.dimension == 384
    assert int8.max_seq_length == float_embedder.max_seq_length == 256
    assert int8.special_tokens() == float_embedder.special_tokens() == 2
    text = "The Jerusalem Post reported on Tuesday that talks resumed."
    assert int8.count_tokens(text) == float_embedder.count_tokens(text)
    long = int8.encode(["word " * 2000])  # truncated to max_seq_length, as sentence-transformers does
    assert long.shape == (1, 384)
    assert int8.encode([]).shape == (0, 384)
    empty = int8.encode(["", "x"])
    assert empty.shape == (2, 384) and np.allclose(np.linalg.norm(empty, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_export_is_cached_and_leaves_no_scratch(int8: OnnxEmbedder, onnx_cache: Path) -> None:
    path = int8.model_path
    assert path.is_file() and path.parent.parent == onnx_cache and path.name == "model-int8.onnx"
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".export-")] == []
    stamp = path.stat().st_mtime_ns
    again = OnnxEmbedder("onnx-int8:default", threads=1, cache_dir=onnx_cache)
    assert again.model_path == path and path.stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_an_export_that_does_not_reproduce_the_model_is_refused(int8: OnnxEmbedder) -> None:
    tokens = int8._tokenizer(["a probe", "another probe text"], padding=True, return_tensors="np")
    feeds = {name: tokens[name] for name in ("input_ids", "attention_mask", "token_type_ids")}
    good = int8._embed_batch([list(row[row > 0]) for row in tokens["input_ids"]])
    onnx_embed._check_export(int8.model_path, feeds, good)
    with pytest.raises(RagError, match="does not reproduce"):
        onnx_embed._check_export(int8.model_path, feeds, -good)


@pytest.mark.slow
def test_load_embedder_selects_onnx(int8: OnnxEmbedder, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_ONNX_CACHE", str(onnx_cache))
    embedder = load_embedder("onnx-int8:all-MiniLM-L6-v2")
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.model_path == int8.model_path
