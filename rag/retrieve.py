"""Hybrid retrieval: dense (FAISS) and lexical (BM25) rankings fused by rank, then near-duplicates
removed and outlets kept from crowding each other out."""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from rag.dates import parse_day
from rag.embed import Embedder, load_query_embedder, model_identity
from rag.errors import IndexMismatchError, QueryError
from rag.lexical import tokenize
from rag.outlets import outlet_key
from rag.query import MAX_QUERY_CHARS, Query, analyse, clean_query
from rag.rank import candidate_features, load_rank_model
from rag.store import MANIFEST, Filter, Store, chunk_id, load_index, rebuild_hint
from rag.types import Passage

__all__ = ["MAX_QUERY_CHARS", "Retriever", "RetrieveSettings", "clean_query", "get_retriever"]


@dataclass(frozen=True)
class RetrieveSettings:
    # "rrf" (default): the two rankings fused by reciprocal rank with the weights below (bm25 alone:
    # dense_weight=0; dense alone: lexical_weight=0), then the best-sentence stage. "learned": the
    # logistic ranking of rag/rank.py, fitted on RealTime QA weeks. On held-out weeks it had the better
    # MRR@10 (0.642 against 0.626) but a lower hits@10 (0.864 against 0.874 for BM25) and cost the seed
    # questions recall@5 (0.948 against 0.966): not the default (docs/benchmarks.md).
    ranker: str = "rrf"
    candidates: int = 60  # per ranking, before fusion (rrf)
    rrf_k: float = 60.0
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    history_weight: float = 0.7  # the ranking of the question read with the conversation before it
    history_turns: int = 2
    outlet_penalty: float = 0.85  # score factor per passage already taken from the same outlet
    # ...and from the same article: more articles in the top k. The learned ranking's scores are turned
    # into rank scores before these discounts (by_rank), as with reciprocal-rank fusion; 0.5 instead of
    # 0.8 cost the seed questions recall@5 (0.914 against 0.948) for +0.01 hits@10 on RealTime QA.
    document_penalty: float = 0.8
    # Where the candidates hold at least `distinct_articles_per_k` x k articles, the top k take each
    # article once (document penalty 0), picked from as far down the ranking as it takes to reach k
    # articles (0: off). In an archive with many reports of a story, ten articles serve better than
    # one long article three times (RealTime QA: a median of 8 articles in a top 10 before; hits@10
    # 0.932 with the rule, 0.913 without, bench/tune_ranking.py). Among five articles (the seeds), a
    # second passage of the best one beats the only passage of the fifth (recall@5 0.948 against
    # 0.966 when every question took each article once): there the rule does not apply.
    distinct_articles_per_k: float = 2.0
    duplicate_jaccard: float = 0.8  # word-trigram overlap above which two passages are one
    # The second stage of "rrf": the top candidates ranked again by their best sentence (stored vectors,
    # no embedding per question). It keeps the seed questions' recall@5 at 0.966 (0.948 without).
    sentence_weight: float = 1.0
    rerank_depth: int = 10
    pool_per_k: int = 4  # candidates the top k are picked from (with the discounts above), per passage asked
    # Pseudo-relevance feedback: one more BM25 ranking, of the question and the `prf_terms` terms that
    # stand out (tf x idf) in the top `prf_docs` fused chunks, fused in with `prf_weight`. Chosen by
    # week-fold cross-validation on RealTime QA (docs/benchmarks.md): the words a question leaves out
    # ("Zawahiri" for "the world's most wanted terrorist") come from the articles that match it.
    prf_weight: float = 1.0
    prf_docs: int = 10
    prf_terms: int = 10
    # Feedback needs an archive where the top chunks are a small, topical part: in the five seed
    # articles every chunk is on the story, the "standing out" terms are noise, and feedback cost the
    # seed questions recall@5 (0.948 against 0.966) and exact answers (0.759 against 0.793).
    prf_min_chunks: int = 2000
    # Dates (issue 11). as_of/since/until are hard bounds; an undated article passes them, ranked as if
    # old. A window the question's words ask for ("this week") is soft: it is searched on its own and
    # an article outside it keeps `window_miss` of its score (reports of an event come days later, and
    # a written date may name the event rather than when it was reported: `explicit_window_miss`).
    window_miss: float = 0.1
    explicit_window_miss: float = 0.7
    window_slack_days: int = 2
    # Without a window, recency is a prior relative to as_of: score x (1 - w + w * exp(-age / days)),
    # steeper (7 days) for "the latest", "now", "currently". window_miss, w and the 30 days were chosen
    # by week-fold cross-validation on RealTime QA (bench/tune_dates.py): a weekly news quiz wants
    # recent news, so the prior came out strong (0.7); undated articles all get the floor, 1 - w.
    recency_weight: float = 0.7
    recency_days: float = 30.0
    strong_recency_weight: float = 0.7
    strong_recency_days: float = 7.0
    # Article focus: the length of the mean of an article's chunk vectors (1: every chunk on one
    # subject). News round-ups ("5 things to know", "News from around our 50 states") score 0.4-0.7,
    # the RealTime QA answers' articles 0.8 or more (5th percentile): a round-up names every story in
    # a line and crowds out the articles about it. Below `focus_threshold` a chunk's score is
    # multiplied by (focus / focus_threshold) ** focus_power (0: off). Chosen by week-fold CV
    # (bench/tune_ranking.py): RealTime QA hits@10 0.932 with it, 0.883 without; MRR@10 as of the
    # question's date 0.855 against 0.827. Read once per article (its chunk vectors), then cached.
    focus_threshold: float = 0.8
    focus_power: float = 2.0


# Dating a story event ("since the ceasefire"): how many of its BM25 hits are read.
EVENT_HITS = 100


class Retriever:
    """A loaded index and its embedder; safe to share between threads."""

    def __init__(self, stored: Store, embedder: Embedder, settings: RetrieveSettings | None = None) -> None:
        if embedder.dimension != stored.manifest.dimension and stored.size:
            raise IndexMismatchError(
                f"index in {stored.directory} has {stored.manifest.dimension}-dimensional vectors but model "
                f"{embedder.name!r} makes {embedder.dimension}; {rebuild_hint(stored.directory)}"
            )
        self.stored = stored
        self.embedder = embedder
        self.settings = settings or RetrieveSettings()
        self.outlets: tuple[str, ...] = stored.outlets
        self._search_lock = threading.Lock()  # faiss and bm25s searches are not all thread-safe
        self._published: dict[str, date | None] = {}
        self._focus: dict[str, float] = {}
        self._days = sorted(d for d in map(self.published, _doc_ids(stored)) if d is not None)
        self.latest = self._days[-1] if self._days else None
        import faiss

        # One query at a time gains nothing from OpenMP threads and pays their start-up (bench/growth.py).
        faiss.omp_set_num_threads(1)

    @property
    def generation(self) -> int:
        return self.stored.manifest.generation

    def analyse(
        self,
        question: object,
        history: Sequence[object] = (),
        outlets: Sequence[str] | None = None,
        as_of: date | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> Query:
        """The question analysed once, for this index's model and outlets."""
        return analyse(
            question,
            self.embedder,
            history,
            outlets,
            self.outlets,
            as_of,
            since,
            until,
            has_articles=self.has_articles,
            event_day=self.event_day,
        )

    def search(
        self,
        query: str | Query,
        k: int = 5,
        history: Sequence[str] = (),
        outlets: Sequence[str] | None = None,
        as_of: date | None = None,
        since: date | None = None,
        until: date | None = None,
    ) -> list[Passage]:
        q = query if isinstance(query, Query) else self.analyse(query, history, outlets, as_of, since, until)
        return self.search_query(q, k)

    def search_query(self, q: Query, k: int = 5) -> list[Passage]:
        """Passages for an analysed question, best first."""
        if k <= 0 or not self.stored.size:
            return []
        mask = self._filter(q)
        scores = self._fused(q, mask)
        window = self._window_filter(q, mask)
        if window is not None:
            inside = self._fused(q, window)
            # A dict, not a set union: equal scores keep one order in every process (no hash seed).
            scores = {row: max(scores.get(row, 0.0), inside.get(row, 0.0)) for row in {**scores, **inside}}
        weights = {row: self.date_weight(row, q) * self.focus_weight(row) for row in scores}
        ranked = sorted(((row, score * weights[row]) for row, score in scores.items()), key=lambda item: -item[1])
        s = self.settings
        if s.ranker == "learned":
            ranked = by_rank(ranked, s.rrf_k)
        elif s.sentence_weight > 0:
            ranked = self._rerank_by_sentence(ranked, q.vector, k, weights)
        return [self.passage(row, score) for row, score in self.select(ranked, k)]

    def _fused(self, q: Query, mask: Filter | None) -> dict[str, float]:
        """Each reading's dense and lexical rankings within `mask`, fused (or the learned scores)."""
        s = self.settings
        # (terms, vector, weight) of each reading of the question. A follow-up is also read with the
        # conversation before it; a short one ("Where were they held?") says nothing alone.
        readings: list[tuple[Sequence[str], np.ndarray, float]] = []
        if q.context_vector is not None:
            joined = (*q.context_terms, *q.terms)
            if len(q.terms) <= 2:
                readings.append((joined, q.context_vector, 1.0))
            else:
                readings += [(q.terms, q.vector, 1.0), (joined, q.context_vector, s.history_weight)]
        else:
            readings.append((q.terms, q.vector, 1.0))
        scores: dict[str, float] = {}
        rankings: list[tuple[float, list[str]]] = []  # (weight, chunk ids best first) of each ranking
        with self._search_lock:
            for terms, vector, weight in readings:
                if s.ranker == "learned":
                    model = load_rank_model()
                    rows, x = candidate_features(
                        self, q, model.depth, mask, terms, vector, sentences=model.uses_sentences
                    )
                    probabilities = 1.0 / (1.0 + np.exp(-model.score(x)))
                    for row, p in zip(rows.tolist(), probabilities.tolist(), strict=True):
                        scores[row] = scores.get(row, 0.0) + weight * p
                    continue
                rankings.append((weight * s.dense_weight, self.dense_rows(vector, s.candidates, mask)))
                lexical = self.stored.lexical_search(terms, s.candidates, mask)
                rankings.append((weight * s.lexical_weight, [row for row, _ in lexical]))
            if s.ranker == "learned":
                return scores
            scores = self._fuse(rankings)
            if not scores or self.stored.size < s.prf_min_chunks:
                return scores
            rankings += self._feedback(q, scores, mask)
        return self._fuse(rankings)

    def _feedback(self, q: Query, scores: dict[str, float], mask: Filter | None) -> list[tuple[float, list[str]]]:
        """More rankings read off the fused one: BM25 of the question and the terms that stand out in it."""
        s = self.settings
        if s.prf_weight <= 0 or s.lexical_weight <= 0:
            return []
        expansion = self.expansion_terms(q, scores)
        if not expansion:
            return []
        found = self.stored.lexical_search((*q.terms, *expansion), s.candidates, mask)
        return [(s.prf_weight, [row for row, _ in found])]

    def _fuse(self, rankings: list[tuple[float, list[str]]]) -> dict[str, float]:
        """Reciprocal-rank fusion of (weight, chunk ids best first) rankings."""
        k = self.settings.rrf_k
        scores: dict[str, float] = {}
        for weight, rows in rankings:
            for rank, row in enumerate(rows):
                scores[row] = scores.get(row, 0.0) + weight / (k + rank + 1)
        return scores

    def expansion_terms(self, q: Query, scores: dict[str, float]) -> list[str]:
        """The terms that stand out in the best-scored chunks and are not the question's own."""
        s = self.settings
        top = sorted(scores.items(), key=lambda item: -item[1])[: s.prf_docs]
        counts: dict[str, int] = {}
        asked = set(q.terms)
        for row, _ in top:
            for term in tokenize(self.stored.chunk(row).text):
                if term not in asked and len(term) > 2:
                    counts[term] = counts.get(term, 0) + 1
        if not counts:
            return []
        terms = list(counts)
        idf = np.log1p(self.stored.size / (1.0 + self.stored.document_frequencies(terms)))
        weight = np.array([counts[t] for t in terms]) * idf
        order = np.argsort(-weight, kind="stable")[: s.prf_terms]
        return [terms[i] for i in order.tolist()]

    def published(self, doc_id: str) -> date | None:
        """An article's publication day (None: undated), read once."""
        if doc_id not in self._published:
            self._published[doc_id] = parse_day(self.stored.info(doc_id).date)
        return self._published[doc_id]

    def has_articles(self, first: date | None, last: date | None) -> bool:
        """Is any article dated within [first, last] (None: open)?"""
        i = bisect.bisect_left(self._days, first or date.min)
        return i < len(self._days) and self._days[i] <= (last or date.max)

    def event_day(self, terms: Sequence[str], as_of: date) -> date | None:
        """The first day, up to `as_of`, an article names a story event ("the ceasefire": every term
        in one chunk, among its EVENT_HITS best BM25 chunks); None when no dated article does.
        The first mention, not the start of the latest burst of coverage: an archive that begins in
        the middle of a long story ("since the start of the war") then gives too wide a window, which
        filters nothing, rather than too narrow a one, which would push the answer out."""
        where = Filter(until=as_of.isoformat(), undated=False)
        with self._search_lock:
            hits = self.stored.lexical_search(list(terms), EVENT_HITS, where)
        wanted = set(terms)
        days = [
            day
            for row, _ in hits
            if (day := self.published(self.stored.ref(row).doc_id)) is not None
            and wanted <= set(tokenize(self.stored.chunk(row).text))
        ]
        return min(days, default=None)

    def focus(self, doc_id: str) -> float:
        """The length of the mean of an article's chunk vectors, read once."""
        if doc_id not in self._focus:
            chunks = self.stored.info(doc_id).chunks
            vectors = self.stored.vectors([chunk_id(doc_id, i) for i in range(chunks)])
            self._focus[doc_id] = float(np.linalg.norm(vectors.mean(axis=0))) if chunks else 1.0
        return self._focus[doc_id]

    def focus_weight(self, row: str) -> float:
        """The factor a chunk's score gets from its article's focus (1 at or above the threshold)."""
        s = self.settings
        if s.focus_threshold <= 0:
            return 1.0
        return min(1.0, self.focus(self.stored.ref(row).doc_id) / s.focus_threshold) ** s.focus_power

    def date_weight(self, row: str, q: Query) -> float:
        """The factor a chunk's score gets from its article's date: the question's window, or recency."""
        s = self.settings
        day = self.published(self.stored.ref(row).doc_id)
        time = q.time
        if time.has_window:
            lo = time.since or date.min
            hi = min(time.until + timedelta(days=s.window_slack_days), q.as_of) if time.until else date.max
            if day is not None and lo <= day <= hi:
                return 1.0
            return s.explicit_window_miss if time.explicit else s.window_miss
        if day is None and (q.since is not None or q.until is not None):
            return s.window_miss  # undated, a window asked for: ranked as if outside it
        strong = time.recency == "strong"
        weight = s.strong_recency_weight if strong else s.recency_weight
        if weight <= 0:
            return 1.0
        if day is None:
            return 1.0 - weight
        age = max(0, (q.as_of - day).days)
        return 1.0 - weight + weight * math.exp(-age / (s.strong_recency_days if strong else s.recency_days))

    def _filter(self, q: Query) -> Filter | None:
        """The hard bounds: the outlets asked for, and nothing published after as_of or outside since/until."""
        outlets = self._outlet_keys(q.outlets)
        cut = min(q.until, q.as_of) if q.until is not None else q.as_of
        # Nothing in the index is later than the cut (or nothing is dated): no mask to build.
        until = None if self.latest is None or cut >= self.latest else cut
        since = q.since
        if outlets is None and since is None and until is None:
            return None
        return Filter(
            outlets=outlets,
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
        )

    def _window_filter(self, q: Query, mask: Filter | None) -> Filter | None:
        """The question's own window (widened by the slack) within the hard bounds; None without one."""
        time = q.time
        if not time.has_window:
            return None
        base = mask or Filter()
        since = max(d for d in (time.since, q.since, date.min) if d is not None)
        hi = time.until + timedelta(days=self.settings.window_slack_days) if time.until else date.max
        until = min(d for d in (hi, q.until, q.as_of) if d is not None)
        if since > until:
            return None
        return replace(
            base,
            since=since.isoformat() if since > date.min else None,
            until=until.isoformat() if until < date.max else None,
            undated=False,
        )

    def _rerank_by_sentence(
        self, ranked: list[tuple[str, float]], vector: np.ndarray, k: int, weights: dict[str, float]
    ) -> list[tuple[str, float]]:
        """The top candidates ranked again by their best sentence (vectors stored at build time), fused
        in by rank: a chunk whose one sentence answers ("some 3,000 fighters") is not drowned by the rest."""
        s = self.settings
        head = ranked[: max(s.rerank_depth, 2 * k)]
        best = []
        for row, _ in head:
            ref = self.stored.ref(row)
            _, vectors = self.stored.sentences.of(ref.doc_id, ref.start, ref.end)
            best.append(float((vectors @ vector).max()) if len(vectors) else -1.0)
        boosted = dict(head)
        for rank, i in enumerate(sorted(range(len(head)), key=lambda i: -best[i])):
            row = head[i][0]
            boosted[row] += weights.get(row, 1.0) * s.sentence_weight / (s.rrf_k + rank + 1)
        return sorted(boosted.items(), key=lambda item: -item[1]) + ranked[len(head) :]

    def passage(self, row: str, score: float) -> Passage:
        chunk = self.stored.chunk(row)
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
            date=doc.date or None,
            url=doc.url,
            author=doc.author,
        )

    def _outlet_keys(self, outlets: Sequence[str] | None) -> frozenset[str] | None:
        if outlets is None:
            return None
        wanted = {outlet_key(o) for o in outlets if o and o.strip()}
        known = {outlet_key(o) for o in self.outlets}
        if not wanted & known:
            raise QueryError(
                f"no outlet called {', '.join(repr(o) for o in outlets)} in the index; "
                f"known outlets: {', '.join(self.outlets)}"
            )
        return frozenset(wanted)

    def dense_rows(self, vector: np.ndarray, k: int, mask: Filter | None) -> list[str]:
        """The ids of the k chunks nearest to `vector` (within `mask`), nearest first."""
        return [cid for cid, _ in self.stored.dense_search(vector, k, mask)]

    def _pool_size(self, ranked: list[tuple[str, float]], k: int, articles: int) -> int:
        """How many of the best candidates select() picks from: pool_per_k x k, more if they hold fewer
        than `articles` articles (one long article's chunks can fill the first 4k places)."""
        size = max(self.settings.pool_per_k * k, 20)
        if articles <= 0 or len(ranked) <= size:
            return size
        docs: set[str] = set()
        for i, (row, _) in enumerate(ranked):
            docs.add(self.stored.ref(row).doc_id)
            if i + 1 >= size and len(docs) >= articles:
                return i + 1
        return len(ranked)

    def _many_articles(self, ranked: list[tuple[str, float]], k: int) -> bool:
        """Do the candidates hold at least distinct_articles_per_k x k articles?"""
        wanted = self.settings.distinct_articles_per_k * k
        if wanted <= 0:
            return False
        docs: set[str] = set()
        for row, _ in ranked:
            docs.add(self.stored.ref(row).doc_id)
            if len(docs) >= wanted:
                return True
        return False

    def select(self, ranked: list[tuple[str, float]], k: int) -> list[tuple[str, float]]:
        """Top k with near-duplicates dropped and repeated outlets and articles discounted."""
        s = self.settings
        distinct = self._many_articles(ranked, k)
        document_penalty = 0.0 if distinct else s.document_penalty
        pool = ranked[: self._pool_size(ranked, k, k if distinct else 0)]
        shingles: dict[str, set[tuple[str, ...]]] = {}
        chosen: list[tuple[str, float]] = []
        refs = {row: self.stored.ref(row) for row, _ in pool}
        outlet_keys = {row: outlet_key(self.stored.info(ref.doc_id).outlet) for row, ref in refs.items()}
        per_outlet: dict[str, int] = {}
        per_doc: dict[str, int] = {}
        while pool and len(chosen) < k:
            best_i, best_score = 0, -1.0
            for i, (row, score) in enumerate(pool):
                chunk = refs[row]
                adjusted = (
                    score
                    * s.outlet_penalty ** per_outlet.get(outlet_keys[row], 0)
                    * document_penalty ** per_doc.get(chunk.doc_id, 0)
                )
                if adjusted > best_score:
                    best_i, best_score = i, adjusted
            row, score = pool.pop(best_i)
            grams = shingles.setdefault(row, _trigrams(self.stored.chunk(row).text))
            if any(_jaccard(grams, shingles[other]) >= s.duplicate_jaccard for other, _ in chosen):
                continue
            chosen.append((row, best_score))
            key = outlet_keys[row]
            per_outlet[key] = per_outlet.get(key, 0) + 1
            doc_id = refs[row].doc_id
            per_doc[doc_id] = per_doc.get(doc_id, 0) + 1
        return chosen


def _doc_ids(stored: Store) -> list[str]:
    manifest = getattr(stored, "manifest", None)
    return list(manifest.documents) if manifest is not None else list(stored.documents)


def by_rank(ranked: list[tuple[str, float]], rrf_k: float = 60.0) -> list[tuple[str, float]]:
    """Scores replaced by 1 / (rrf_k + rank): the outlet and article discounts of select() were set on
    rank scores, where a discount moves a passage a few places, not past every other outlet."""
    return [(row, 1.0 / (rrf_k + rank + 1)) for rank, (row, _) in enumerate(ranked)]


def _trigrams(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def _jaccard(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


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
