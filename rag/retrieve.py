"""Hybrid retrieval: dense (FAISS) and lexical (BM25) rankings fused by rank, then near-duplicates
removed and outlets kept from crowding each other out."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed import Embedder, load_query_embedder, model_identity
from rag.errors import IndexMismatchError, QueryError
from rag.lexical import tokenize
from rag.outlets import outlet_key
from rag.sentences import sentence_spans
from rag.store import MANIFEST, StoredIndex, load_index, rebuild_hint
from rag.types import Passage

MAX_QUERY_CHARS = 2000  # longer questions are cut: nothing in a question needs more


@dataclass(frozen=True)
class RetrieveSettings:
    candidates: int = 60  # per ranking, before fusion
    rrf_k: float = 60.0
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    history_weight: float = 0.7  # the ranking of the question read with the conversation before it
    history_turns: int = 2
    outlet_penalty: float = 0.85  # score factor per passage already taken from the same outlet
    # ...and from the same article: more articles in the top k. 0.8 took RealTime QA dev hits@10 from
    # 0.854 to 0.874 and kept the seed questions' recall@5 (docs/benchmarks.md).
    document_penalty: float = 0.8
    duplicate_jaccard: float = 0.8  # word-trigram overlap above which two passages are one
    # The second stage: candidates ranked again by their best sentence. It lifted the seed questions'
    # recall@5 from 0.944 to 0.963 (shared set) and RealTime QA dev hits@10 from 0.874 to 0.883.
    sentence_weight: float = 1.0
    rerank_depth: int = 10  # candidates re-ranked (at least 2k): each costs its sentences' embeddings


class SentenceVectors:
    """Sentence embeddings, cached by (document, offsets): the same articles come back often."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._cache: OrderedDict[tuple[str, str, int, int], np.ndarray] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, embedder: Embedder, spans: list[tuple[str, int, int]], texts: list[str]) -> np.ndarray:
        # Keyed by model too: two indexes of the same articles may use different models.
        model = embedder.name
        keys = [(model, *span) for span in spans]
        with self._lock:
            missing = [i for i, key in enumerate(keys) if key not in self._cache]
        if missing:
            fresh = embedder.encode([texts[i] for i in missing])
            with self._lock:
                for i, vector in zip(missing, fresh, strict=True):
                    self._cache[keys[i]] = vector
                while len(self._cache) > self._capacity:
                    self._cache.popitem(last=False)
        with self._lock:
            out = np.stack([self._cache[key] for key in keys]) if keys else np.zeros((0, 1), np.float32)
        return out


SENTENCE_VECTORS = SentenceVectors()


class Retriever:
    """A loaded index and its embedder; safe to share between threads."""

    def __init__(self, stored: StoredIndex, embedder: Embedder, settings: RetrieveSettings | None = None) -> None:
        if embedder.dimension != stored.manifest.dimension and stored.chunks:
            raise IndexMismatchError(
                f"index in {stored.directory} has {stored.manifest.dimension}-dimensional vectors but model "
                f"{embedder.name!r} makes {embedder.dimension}; {rebuild_hint(stored.directory)}"
            )
        self.stored = stored
        self.embedder = embedder
        self.settings = settings or RetrieveSettings()
        outlets = [stored.documents[c.doc_id].outlet for c in stored.chunks]
        self._outlet_keys = np.array([outlet_key(o) for o in outlets]) if outlets else np.array([], dtype=str)
        self.outlets: tuple[str, ...] = tuple(sorted({d.outlet for d in stored.documents.values()}))
        self._search_lock = threading.Lock()  # faiss and bm25s searches are not all thread-safe
        import faiss

        # One query at a time gains nothing from OpenMP threads and pays their start-up (bench/growth.py).
        faiss.omp_set_num_threads(1)

    @property
    def generation(self) -> int:
        return self.stored.manifest.generation

    def search(
        self,
        query: str,
        k: int = 5,
        history: Sequence[str] = (),
        outlets: Sequence[str] | None = None,
    ) -> list[Passage]:
        query = clean_query(query)
        if k <= 0 or not self.stored.chunks:
            return []
        mask = self._outlet_mask(outlets)
        s = self.settings
        scores: dict[int, float] = {}
        queries = [(query, 1.0)]
        context = " ".join(clean_query(h, allow_empty=True) for h in list(history)[-s.history_turns :]).strip()
        if context:
            # "Where were they held?" says nothing alone: a short follow-up is searched only with the
            # conversation before it; a longer one also on its own.
            with_context = f"{context} {query}"
            if len(tokenize(query)) <= 2:
                queries = [(with_context, 1.0)]
            else:
                queries.append((with_context, s.history_weight))
        vectors = self.embedder.encode([q for q, _ in queries])
        with self._search_lock:
            for (text, weight), vector in zip(queries, vectors, strict=True):
                for rank, row in enumerate(self._dense(vector, s.candidates, mask)):
                    scores[row] = scores.get(row, 0.0) + weight * s.dense_weight / (s.rrf_k + rank + 1)
                for rank, (row, _) in enumerate(self.stored.lexical.search(text, s.candidates, mask)):
                    scores[row] = scores.get(row, 0.0) + weight * s.lexical_weight / (s.rrf_k + rank + 1)
        ranked = sorted(scores.items(), key=lambda item: -item[1])
        if s.sentence_weight > 0:
            ranked = self._rerank_by_sentence(ranked, vectors[0], k)
        return [self.passage(row, score) for row, score in self._select(ranked, k)]

    def _rerank_by_sentence(
        self, ranked: list[tuple[int, float]], query: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        """A second stage: the top candidates ranked again by their best sentence's similarity to
        the question, fused in by rank. A chunk whose one sentence answers ("some 3,000 fighters")
        is not drowned by its other sentences."""
        s = self.settings
        head = ranked[: max(s.rerank_depth, 2 * k)]
        best: list[float] = []
        for row, _ in head:
            chunk = self.stored.chunks[row]
            spans = sentence_spans(chunk.text)
            keys = [(chunk.doc_id, chunk.start + sp.start, chunk.start + sp.end) for sp in spans]
            texts = [chunk.text[sp.start : sp.end] for sp in spans]
            if not texts:
                best.append(-1.0)
                continue
            best.append(float(np.max(SENTENCE_VECTORS.get(self.embedder, keys, texts) @ query)))
        order = sorted(range(len(head)), key=lambda i: -best[i])
        boosted = dict(head)
        for rank, i in enumerate(order):
            row = head[i][0]
            boosted[row] += s.sentence_weight / (s.rrf_k + rank + 1)
        return sorted(boosted.items(), key=lambda item: -item[1]) + ranked[len(head) :]

    def passage(self, row: int, score: float) -> Passage:
        chunk = self.stored.chunks[row]
        doc = self.stored.documents[chunk.doc_id]
        return Passage(
            text=chunk.text,
            outlet=doc.outlet,
            title=doc.title,
            source=doc.source,
            score=float(score),
            start=chunk.start,
            end=chunk.end,
            doc_id=doc.doc_id,
            chunk_id=row,
            page=chunk.page,
            date=doc.date,
            url=doc.url,
            author=doc.author,
        )

    def _outlet_mask(self, outlets: Sequence[str] | None) -> np.ndarray | None:
        if outlets is None:
            return None
        wanted = {outlet_key(o) for o in outlets if o and o.strip()}
        known = {outlet_key(o) for o in self.outlets}
        if not wanted & known:
            raise QueryError(
                f"no outlet called {', '.join(repr(o) for o in outlets)} in the index; "
                f"known outlets: {', '.join(self.outlets)}"
            )
        return np.isin(self._outlet_keys, list(wanted))

    def _dense(self, vector: np.ndarray, k: int, mask: np.ndarray | None) -> list[int]:
        import faiss

        index = self.stored.dense
        k = min(k, index.ntotal)
        params: Any = None
        if _is_hnsw(index):
            params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
            params.efSearch = max(256, 2 * k)  # recall@10 ~0.95 at 300k chunks for <1 ms (bench/growth.py)
        elif mask is not None:
            params = faiss.SearchParameters()
        if mask is not None:
            selector = faiss.IDSelectorBatch(np.flatnonzero(mask).astype(np.int64))
            params.sel = selector
        _, rows = index.search(vector.reshape(1, -1).astype(np.float32), k, params=params)
        return [int(r) for r in rows[0] if r >= 0]

    def _select(self, ranked: list[tuple[int, float]], k: int) -> list[tuple[int, float]]:
        """Top k with near-duplicates dropped and repeated outlets and articles discounted."""
        s = self.settings
        pool = ranked[: max(4 * k, 20)]
        shingles: dict[int, set[tuple[str, ...]]] = {}
        chosen: list[tuple[int, float]] = []
        per_outlet: dict[str, int] = {}
        per_doc: dict[str, int] = {}
        while pool and len(chosen) < k:
            best_i, best_score = 0, -1.0
            for i, (row, score) in enumerate(pool):
                chunk = self.stored.chunks[row]
                adjusted = (
                    score
                    * s.outlet_penalty ** per_outlet.get(self._outlet_keys[row], 0)
                    * s.document_penalty ** per_doc.get(chunk.doc_id, 0)
                )
                if adjusted > best_score:
                    best_i, best_score = i, adjusted
            row, score = pool.pop(best_i)
            grams = shingles.setdefault(row, _trigrams(self.stored.chunks[row].text))
            if any(_jaccard(grams, shingles[other]) >= s.duplicate_jaccard for other, _ in chosen):
                continue
            chosen.append((row, best_score))
            key = str(self._outlet_keys[row])
            per_outlet[key] = per_outlet.get(key, 0) + 1
            doc_id = self.stored.chunks[row].doc_id
            per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
        return chosen


def _is_hnsw(index: object) -> bool:
    return type(index).__name__.startswith("IndexHNSW")


def _trigrams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def _jaccard(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def clean_query(query: str, allow_empty: bool = False) -> str:
    """A question as text to search with; refuses one with nothing to search for."""
    if not isinstance(query, str):
        raise QueryError("the question must be text")
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", query)[:MAX_QUERY_CHARS]
    text = re.sub(r"\s+", " ", text).strip()
    if not re.search(r"\w", text):
        if allow_empty:
            return ""
        raise QueryError("the question is empty; ask about the articles in words")
    return text


_RETRIEVERS: dict[str, Retriever] = {}
_STAMPS: dict[str, tuple[int, int] | None] = {}
_RETRIEVERS_LOCK = threading.Lock()


def get_retriever(index_dir: Path, model: str | None = None) -> Retriever:
    """The retriever for `index_dir`, loaded once and reloaded when a build commits a new manifest.

    Questions asked during a rebuild are answered from the old index until the swap."""
    key = str(Path(index_dir).resolve())
    manifest_path = Path(index_dir) / MANIFEST
    with _RETRIEVERS_LOCK:
        current = _RETRIEVERS.get(key)
        # A build commits by replacing manifest.json: a new inode means a new index.
        stamp = _stamp(manifest_path)
        if current is not None and (stamp is None or stamp == _STAMPS.get(key)):
            return current
        stored = load_index(Path(index_dir))
        stored_model = stored.manifest.model
        if model is not None and model_identity(model) != stored_model:
            raise IndexMismatchError(
                f"index in {index_dir} was built with model {stored_model!r}, not {model!r}; "
                f"rebuild it with `rag index --rebuild --model {model} --index-dir {index_dir}`"
            )
        onnx_copy = stored.manifest.settings.get("query_onnx")  # no torch for questions when there is one
        retriever = Retriever(stored, load_query_embedder(stored.directory, stored_model, onnx_copy))
        _RETRIEVERS[key] = retriever
        _STAMPS[key] = stamp
        return retriever


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)
