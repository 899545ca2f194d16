"""Shared fixtures for the store, index, retrieval, fault, CLI and API tests.

Everything here runs on HashEmbedder (manifest model "hash:256"): no model, no network,
milliseconds per build. Only tests marked @pytest.mark.slow load the real bundled model,
through the session-scoped `real_index`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import rag.index
from rag.embed import HashEmbedder, load_embedder
from rag.index import build_index

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
CORPUS_FILES = sorted(p.name for p in CORPUS.glob("*.txt"))


class CountingEmbedder:
    """Wraps an embedder and records every encode call (the texts it was asked to embed)."""

    def __init__(self, inner: HashEmbedder | None = None) -> None:
        self.inner = inner or HashEmbedder()
        self.calls: list[list[str]] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_seq_length(self) -> int:
        return self.inner.max_seq_length

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def special_tokens(self) -> int:
        return self.inner.special_tokens()

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.encode(texts, batch_size=batch_size, progress=progress)

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A private copy of the bundled corpus (five articles, four outlets)."""
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "index"


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def fake_index(corpus_dir: Path, index_dir: Path) -> Path:
    """An index of `corpus_dir` built with the hash embedder; returns the index directory."""
    report = build_index([corpus_dir], index_dir, embedder=HashEmbedder())
    assert report.documents == len(CORPUS_FILES) and not report.rejected
    return index_dir


@pytest.fixture
def write_article() -> Callable[..., Path]:
    """write_article(path, body, title=..., outlet=...): a .txt article with a metadata header."""

    def write(path: Path, body: str, *, title: str, outlet: str, **extra: str) -> Path:
        header = [f"Title: {title}", f"Outlet: {outlet}", *(f"{k.title()}: {v}" for k, v in extra.items())]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(header) + "\n\n" + body.strip() + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture
def fake_default_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Code paths that pick the model themselves (rag.build_index, the CLI, the API's first
    build) get the hash embedder instead of loading the real model."""

    def fake_load(spec: str = "") -> object:
        return load_embedder(spec) if spec.startswith("hash:") else HashEmbedder()

    monkeypatch.setattr(rag.index, "load_embedder", fake_load)
    monkeypatch.setenv("RAG_MODEL", "hash:256")


@pytest.fixture(scope="session")
def real_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled corpus indexed with the real bundled model, once per session."""
    index = tmp_path_factory.mktemp("real") / "index"
    report = build_index([CORPUS], index)
    assert report.documents == len(CORPUS_FILES) and report.embedded == report.chunks > 0
    return index


DATED = (  # (file, outlet, date or "", body): one story reported on three days, and once undated
    ("early.txt", "Outlet A", "2024-03-01", "The port of Ashdod handled 120 aid trucks on Friday, officials said."),
    ("middle.txt", "Outlet B", "2024-03-10", "The port of Ashdod handled 150 aid trucks on Sunday, officials said."),
    ("late.txt", "Outlet C", "2024-03-20", "The port of Ashdod handled 200 aid trucks on Wednesday, officials said."),
    ("undated.txt", "Outlet D", "", "The port of Ashdod handled 90 aid trucks, officials said."),
)


@pytest.fixture
def dated_index(tmp_path: Path, write_article: Callable[..., Path]) -> Path:
    """An index of four short reports on aid trucks at Ashdod, dated 1, 10 and 20 March 2024 and undated."""
    sources = tmp_path / "dated"
    for name, outlet, day, body in DATED:
        extra = {"date": day} if day else {}
        write_article(sources / name, body, title=f"Aid trucks at Ashdod ({outlet})", outlet=outlet, **extra)
    index = tmp_path / "dated-index"
    report = build_index([sources], index, embedder=HashEmbedder())
    assert report.documents == 4 and report.undated == 1
    return index
