"""For experiments only: a retriever whose sentence vectors are embedded on first use and kept.

Tuning can then try another sentence splitter or model without rebuilding the index. The
product never does this: its sentence vectors are made when an article is indexed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed import Embedder, load_embedder
from rag.retrieve import Retriever
from rag.sentences import sentence_spans
from rag.store import Store, chunk_id, load_index


class _Spans(Mapping[str, tuple[int, np.ndarray]]):
    def __init__(self, owner: LazySentences) -> None:
        self._owner = owner

    def __getitem__(self, doc_id: str) -> tuple[int, np.ndarray]:
        return 0, self._owner.spans_of(doc_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self._owner.store.documents)

    def __len__(self) -> int:
        return len(self._owner.store.documents)


class LazySentences:
    """The Sentences of a store, split over the text each article's chunks cover and embedded lazily."""

    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder
        self.spans = _Spans(self)
        self._done: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def spans_of(self, doc_id: str) -> np.ndarray:
        return self._table(doc_id)[0]

    def _table(self, doc_id: str) -> tuple[np.ndarray, np.ndarray]:
        if doc_id not in self._done:
            refs = [self.store.ref(chunk_id(doc_id, i)) for i in range(self.store.info(doc_id).chunks)]
            text = self.store.documents[doc_id].text
            lo, hi = (min(r.start for r in refs), max(r.end for r in refs)) if refs else (0, 0)
            offsets = np.array([(s.start, s.end) for s in sentence_spans(text, lo, hi)], np.int64).reshape(-1, 2)
            vectors = self.embedder.encode([text[a:b] for a, b in offsets.tolist()]) if len(offsets) else None
            dim = self.store.manifest.dimension
            self._done[doc_id] = (offsets, np.zeros((0, dim), np.float32) if vectors is None else vectors)
        return self._done[doc_id]

    def of(self, doc_id: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        spans, vectors = self._table(doc_id)
        lo = int(np.searchsorted(spans[:, 0], start, side="left"))
        hi = int(np.searchsorted(spans[:, 0], end, side="left"))
        return spans[lo:hi], np.asarray(vectors[lo:hi], dtype=np.float32)

    def has(self, doc_id: str) -> bool:
        return doc_id in self.store.documents


class _LazyStore:
    """The store with its sentences replaced; everything else is the store's."""

    def __init__(self, store: Store, sentences: LazySentences) -> None:
        self._store = store
        self.sentences = sentences

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def lazy_retriever(index_dir: Path) -> Retriever:
    stored = load_index(index_dir)
    embedder = load_embedder(stored.manifest.model)
    return Retriever(_LazyStore(stored, LazySentences(stored, embedder)), embedder)  # type: ignore[arg-type]
