"""For experiments only: a retriever over an index whose sentence table is not built yet.

Sentence vectors are embedded on first use and kept, so that tuning can start on an index of an
older format while `rag index` adds the real table. The product never does this: its sentence
vectors are made when an article is indexed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from rag.embed import load_embedder
from rag.retrieve import Retriever
from rag.sentences import sentence_spans
from rag.store import SentenceTable, StoredIndex, load_index


class LazySentenceTable(SentenceTable):
    def __init__(self, stored: StoredIndex, embedder: object) -> None:
        covered: dict[str, tuple[int, int]] = {}
        for c in stored.chunks:
            lo, hi = covered.get(c.doc_id, (c.start, c.end))
            covered[c.doc_id] = (min(lo, c.start), max(hi, c.end))
        spans = {}
        row = 0
        for doc_id, (lo, hi) in covered.items():
            offsets = np.array([(s.start, s.end) for s in sentence_spans(stored.documents[doc_id].text, lo, hi)])
            offsets = offsets.reshape(-1, 2).astype(np.int64)
            spans[doc_id] = (row, offsets)
            row += len(offsets)
        object.__setattr__(self, "spans", spans)
        object.__setattr__(self, "vectors", np.zeros((row, stored.vectors.shape[1]), np.float16))
        object.__setattr__(self, "_done", np.zeros(row, bool))
        object.__setattr__(self, "_stored", stored)
        object.__setattr__(self, "_embedder", embedder)

    def of(self, doc_id: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        first, spans = self.spans.get(doc_id, (0, np.zeros((0, 2), np.int64)))
        lo = int(np.searchsorted(spans[:, 0], start, side="left"))
        hi = int(np.searchsorted(spans[:, 0], end, side="left"))
        rows = np.arange(first + lo, first + hi)
        todo = rows[~self._done[rows]]  # type: ignore[attr-defined]
        if len(todo):
            text = self._stored.documents[doc_id].text  # type: ignore[attr-defined]
            texts = [text[a:b] for a, b in spans[todo - first].tolist()]
            self.vectors[todo] = self._embedder.encode(texts).astype(np.float16)  # type: ignore[attr-defined]
            self._done[todo] = True  # type: ignore[attr-defined]
        return spans[lo:hi], np.asarray(self.vectors[first + lo : first + hi], dtype=np.float32)


def lazy_retriever(index_dir: Path) -> Retriever:
    stored = load_index(index_dir, any_format=True)
    embedder = load_embedder(stored.manifest.model)
    stored = replace(stored, sentences=LazySentenceTable(stored, embedder))
    return Retriever(stored, embedder)
