"""The ONNX embedders: the index's fp32 copy of its model for questions (the same vectors as torch) and the
int8 model. Spec handling, batching and the index copy's bookkeeping are fast; exports are slow."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import onnx_embed
from rag.embed import (
    DEFAULT_MODEL,
    HashEmbedder,
    SentenceTransformerEmbedder,
    load_embedder,
    model_identity,
    resolve_model_path,
)
from rag.errors import RagError
from rag.index import BuildSettings, chunk_for_model, embedding_text
from rag.ingest import read_document
from rag.onnx_embed import OnnxEmbedder
from rag.retrieve import get_retriever
from rag.sentences import sentence_spans
from rag.store import MANIFEST, read_manifest

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
    from tokenizers import Tokenizer

    embedder = OnnxEmbedder.__new__(OnnxEmbedder)
    session = _FakeSession(16)
    embedder.name = "onnx-int8:fake"
    embedder.dimension = 16
    embedder.max_seq_length = 32
    embedder.pooling = "mean"
    embedder._tokenizer = Tokenizer.from_file(str(_model_dir() / "tokenizer.json"))
    embedder._tokenizer.no_padding()
    embedder._tokenizer.enable_truncation(max_length=32)
    embedder._lower = False
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
    session.widths.clear()
    embedder.encode(texts * 3, batch_size=64)  # small batches run fastest on CPU: at most MAX_BATCH_ROWS rows
    assert len(session.widths) == -(-len(texts) * 3 // onnx_embed.MAX_BATCH_ROWS)


# --- the index's copy for questions: bookkeeping (fast; the export itself is replaced) ---------------------------


@pytest.fixture
def fake_export(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """write_bundle writes three small files instead of exporting; returns the model dirs it was asked for."""
    calls: list[Path] = []

    def write(model_dir: Path, out_dir: Path, quantize: bool) -> Path:
        calls.append(model_dir)
        for name in (onnx_embed.TOKENIZER_FILE, onnx_embed.BUNDLE_FILE, onnx_embed.FLOAT_FILE):
            (out_dir / name).write_text("{}")
        return out_dir / onnx_embed.FLOAT_FILE

    monkeypatch.setattr(onnx_embed, "write_bundle", write)
    return calls


def _unloaded_model_embedder(name: str = DEFAULT_MODEL) -> SentenceTransformerEmbedder:
    embedder = SentenceTransformerEmbedder.__new__(SentenceTransformerEmbedder)
    embedder.name = name
    return embedder


def test_query_copy_is_made_once_and_copies_of_other_models_go(fake_export: list[Path], tmp_path: Path) -> None:
    stale = tmp_path / (onnx_embed.QUERY_DIR_PREFIX + "0123456789abcdef")
    stale.mkdir(parents=True)
    record = onnx_embed.ensure_query_model(tmp_path, DEFAULT_MODEL)
    assert fake_export == [_model_dir().resolve()]
    assert record["dir"].startswith(onnx_embed.QUERY_DIR_PREFIX) and record["file"] == onnx_embed.FLOAT_FILE
    assert (tmp_path / record["dir"] / record["file"]).is_file() and not stale.exists()
    assert [p.name for p in tmp_path.iterdir()] == [record["dir"]]  # no scratch left
    assert onnx_embed.ensure_query_model(tmp_path, DEFAULT_MODEL) == record and len(fake_export) == 1


def test_copy_for_queries_only_for_sentence_transformers_models(
    fake_export: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert onnx_embed.copy_for_queries(tmp_path, HashEmbedder()) is None
    record = onnx_embed.copy_for_queries(tmp_path, _unloaded_model_embedder())
    assert record is not None and len(fake_export) == 1
    # The previous build's record is kept while its file is there, without hashing the model again.
    monkeypatch.setattr(onnx_embed, "model_hash", lambda *a: pytest.fail("hashed the model again"))
    assert onnx_embed.copy_for_queries(tmp_path, _unloaded_model_embedder(), known=record) == record

    def refuse(index_dir: Path, model_spec: str) -> dict[str, Any]:
        raise RagError("torch cannot trace this model")

    monkeypatch.setattr(onnx_embed, "ensure_query_model", refuse)
    with caplog.at_level("WARNING", logger="rag.onnx_embed"):
        assert onnx_embed.copy_for_queries(tmp_path / "other", _unloaded_model_embedder()) is None
    assert any("cannot trace" in r.getMessage() for r in caplog.records)  # the build goes on without it


def test_a_failed_query_copy_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(model_dir: Path, out_dir: Path, quantize: bool) -> Path:
        (out_dir / onnx_embed.FLOAT_FILE).write_bytes(b"half a model")
        raise RagError("exporter gave up")

    monkeypatch.setattr(onnx_embed, "write_bundle", broken)
    with pytest.raises(RagError, match="gave up"):
        onnx_embed.ensure_query_model(tmp_path, DEFAULT_MODEL)
    assert list(tmp_path.iterdir()) == []


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
    ids = int8.token_ids(["a probe", "another probe text"])
    width = max(len(row) for row in ids)
    input_ids = np.array([row + [0] * (width - len(row)) for row in ids], dtype=np.int64)
    mask = (input_ids > 0).astype(np.int64)
    feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
    good = int8._embed_batch(ids)
    assert onnx_embed._check_export(int8.model_path, feeds, good) > 0.9999
    with pytest.raises(RagError, match="does not reproduce"):
        onnx_embed._check_export(int8.model_path, feeds, -good)


@pytest.mark.slow
def test_load_embedder_selects_onnx(int8: OnnxEmbedder, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_ONNX_CACHE", str(onnx_cache))
    embedder = load_embedder("onnx-int8:all-MiniLM-L6-v2")
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.model_path == int8.model_path


# --- slow: the index's fp32 copy against the model it copies ----------------------------------------------------


@pytest.fixture(scope="module")
def query_copy(tmp_path_factory: pytest.TempPathFactory) -> OnnxEmbedder:
    index_dir = tmp_path_factory.mktemp("index")
    record = onnx_embed.ensure_query_model(index_dir, DEFAULT_MODEL)
    return OnnxEmbedder.from_bundle(index_dir / record["dir"] / record["file"], name=DEFAULT_MODEL)


def _seed_questions() -> list[str]:
    import json

    files = (Path("/work/shared/eval/seed_qa.jsonl"), REPO / "tests" / "data" / "seed_dev.jsonl")
    return [json.loads(line)["question"] for f in files if f.is_file() for line in f.read_text().splitlines() if line]


@pytest.mark.slow
def test_query_copy_gives_the_models_vectors(
    query_copy: OnnxEmbedder, float_embedder: Any, seed_chunks: list[str]
) -> None:
    sentences = [c[s.start : s.end] for c in seed_chunks for s in sentence_spans(c)]
    odd = ["", "x", "  padded question?  ", "TENTS from CHINA", "word " * 600]  # empty, case, truncation
    texts = [*_seed_questions(), *odd, *sentences, *seed_chunks]
    assert len(texts) > 300
    reference = float_embedder.encode(texts)
    vectors = query_copy.encode(texts)
    cosine = np.sum(vectors * reference, axis=1)
    assert cosine.min() >= 0.9999, (cosine.min(), texts[int(np.argmin(cosine))])
    assert vectors.dtype == np.float32 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_query_copy_tokenises_as_the_model(query_copy: OnnxEmbedder, float_embedder: Any) -> None:
    texts = [*_seed_questions(), "  padded  ", "word " * 600, "Café, naïve – “quoted” 40,000"]
    expected = float_embedder._tokenizer([t.strip() for t in texts], truncation=True, max_length=256)["input_ids"]
    assert query_copy.token_ids(texts) == expected
    assert (query_copy.dimension, query_copy.max_seq_length, query_copy.special_tokens()) == (384, 256, 2)
    text = "The Jerusalem Post reported on Tuesday that talks resumed. " * 40
    assert query_copy.count_tokens(text) == float_embedder.count_tokens(text) > 256  # counting does not cut


@pytest.mark.slow
def test_an_index_built_with_the_model_questions_it_with_its_copy(real_index: Path, tmp_path: Path) -> None:
    record = read_manifest(real_index).settings["query_onnx"]
    assert (real_index / record["dir"] / record["file"]).is_file()
    assert isinstance(get_retriever(real_index).embedder, OnnxEmbedder)
    # An index without the copy (built before it existed, or the export failed) still answers, with the model.
    import json
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(real_index, plain, ignore=shutil.ignore_patterns(onnx_embed.QUERY_DIR_PREFIX + "*"))
    manifest = json.loads((plain / MANIFEST).read_text())
    manifest["settings"].pop("query_onnx")
    (plain / MANIFEST).write_text(json.dumps(manifest))
    retriever = get_retriever(plain)
    assert isinstance(retriever.embedder, SentenceTransformerEmbedder)
    fast = get_retriever(real_index).search("How many tents did Israel order from China?", k=5)
    slow = retriever.search("How many tents did Israel order from China?", k=5)
    assert [p.chunk_id for p in fast] == [p.chunk_id for p in slow]
