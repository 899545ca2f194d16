"""The learned ranking of candidate chunks: features of each candidate and a logistic model over them.

The candidates are the union of the top chunks by BM25 and by embedding. Each is described by
its own scores and ranks in both, by how much its article agrees (several of the article's
chunks among the candidates, the article's best scores) and by its best sentence. The weights
are fitted by bench/tune_retrieval.py on RealTime QA dev weeks, with weeks held out to check
that they hold on questions they were not fitted on; they live in rag/retrieval_model.json.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rag.query import Query
    from rag.retrieve import Retriever
    from rag.store import Filter

MODEL_PATH = Path(__file__).with_name("retrieval_model.json")
RRF_K = 60.0

FEATURES = (
    "bm25_score",  # BM25 score over the best candidate's
    "bm25_rr",  # reciprocal rank in the BM25 ranking (0 when not in it)
    "dense_score",  # cosine to the question
    "dense_gap",  # ... less the best candidate's
    "dense_rr",
    "doc_chunks",  # log(1 + the article's chunks among the candidates)
    "doc_bm25_score",  # the article's best bm25_score
    "doc_dense_gap",  # the article's best dense_gap
    "sent_score",  # the chunk's best sentence's cosine to the question
    "sent_gap",
)


def candidate_features(
    retriever: Retriever,
    q: Query,
    depth: int,
    mask: Filter | None = None,
    terms: Sequence[str] | None = None,
    vector: np.ndarray | None = None,
    sentences: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(chunk ids, [ids x FEATURES]) for one reading of the question. Without `sentences` the
    sentence features stay 0 (a model that does not use them need not pay for them)."""
    stored = retriever.stored
    terms = q.terms if terms is None else terms
    vector = q.vector if vector is None else vector
    dense_rows = retriever.dense_rows(vector, depth, mask)
    lexical_rows = [cid for cid, _ in stored.lexical_search(terms, depth, mask)]
    rows = np.array(list(dict.fromkeys([*dense_rows, *lexical_rows])), dtype=object)
    if not len(rows):
        return rows, np.zeros((0, len(FEATURES)), np.float32)
    n = len(rows)
    x = np.zeros((n, len(FEATURES)), np.float32)
    col = {f: i for i, f in enumerate(FEATURES)}
    cand_bm25 = stored.lexical_scores(terms, rows.tolist())
    top = float(cand_bm25.max()) or 1.0
    x[:, col["bm25_score"]] = cand_bm25 / top
    lexical_rank = {row: r for r, row in enumerate(lexical_rows)}
    dense_rank = {row: r for r, row in enumerate(dense_rows)}
    x[:, col["bm25_rr"]] = [RRF_K / (RRF_K + lexical_rank[r] + 1) if r in lexical_rank else 0.0 for r in rows]
    x[:, col["dense_rr"]] = [RRF_K / (RRF_K + dense_rank[r] + 1) if r in dense_rank else 0.0 for r in rows]
    dense = stored.vectors(rows.tolist()) @ vector
    x[:, col["dense_score"]] = dense
    x[:, col["dense_gap"]] = dense - dense.max()
    refs = [stored.ref(r) for r in rows]
    docs = [ref.doc_id for ref in refs]
    per_doc: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        per_doc.setdefault(d, []).append(i)
    for members in per_doc.values():
        x[members, col["doc_chunks"]] = np.log1p(len(members))
        x[members, col["doc_bm25_score"]] = x[members, col["bm25_score"]].max()
        x[members, col["doc_dense_gap"]] = x[members, col["dense_gap"]].max()
    if not sentences:
        return rows, x
    table = stored.sentences
    best = np.zeros(n, np.float32)
    for i, chunk in enumerate(refs):
        _, vectors = table.of(chunk.doc_id, chunk.start, chunk.end)
        best[i] = float((vectors @ vector).max()) if len(vectors) else 0.0
    x[:, col["sent_score"]] = best
    x[:, col["sent_gap"]] = best - best.max()
    return rows, x


@dataclass(frozen=True)
class RankModel:
    features: tuple[str, ...]
    weights: np.ndarray
    bias: float
    depth: int

    @property
    def uses_sentences(self) -> bool:
        return any(f.startswith("sent_") for f in self.features)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Log-odds that each candidate comes from an article that answers."""
        idx = [FEATURES.index(f) for f in self.features]
        return np.asarray(x[:, idx] @ self.weights + self.bias)


@lru_cache(maxsize=4)
def load_rank_model(path: Path = MODEL_PATH) -> RankModel:
    data = json.loads(path.read_text(encoding="utf-8"))
    return RankModel(
        features=tuple(data["features"]),
        weights=np.asarray(data["weights"], dtype=np.float32),
        bias=float(data["bias"]),
        depth=int(data.get("depth", 100)),
    )


def fit_logistic(
    xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], l2: float = 1.0, balance: bool = True
) -> tuple[np.ndarray, float]:
    """Logistic regression by Newton's method. With `balance`, each group (question) weighs the
    same whatever its number of rows; groups without a positive are left out."""
    keep = [(x, y) for x, y in zip(xs, ys, strict=True) if len(y) and y.max() > 0]
    x = np.concatenate([k[0] for k in keep]).astype(np.float64)
    y = np.concatenate([k[1] for k in keep]).astype(np.float64)
    sw = np.concatenate([np.full(len(k[1]), 1.0 / len(k[1])) for k in keep]) * len(keep) if balance else np.ones(len(y))
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-(xb @ w)))
        grad = xb.T @ (sw * (p - y)) + reg * w
        hess = (xb * (sw * p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-6 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    return w[:-1], float(w[-1])
