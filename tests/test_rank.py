"""The learned ranking: candidate features, the model file, and the logistic fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rag.rank import FEATURES, MODEL_PATH, candidate_features, fit_logistic, load_rank_model
from rag.retrieve import get_retriever


def test_candidates_hold_both_rankings_and_their_evidence(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    q = retriever.analyse("How many tents did Israel order from China?")
    rows, x = candidate_features(retriever, q, depth=20)
    assert len(rows) == len(set(rows.tolist())) == len(x) > 0
    col = {f: i for i, f in enumerate(FEATURES)}
    # The chunk that holds the answer is a candidate with the best BM25 score of all.
    best = str(rows[int(np.argmax(x[:, col["bm25_score"]]))])
    assert "40,000 tents" in retriever.stored.chunk(best).text
    assert x[:, col["bm25_score"]].max() == 1.0 and (x[:, col["dense_gap"]] <= 0).all()
    # Every candidate's article evidence is at least its own.
    assert (x[:, col["doc_bm25_score"]] >= x[:, col["bm25_score"]]).all()
    assert (x[:, col["doc_chunks"]] >= np.log1p(1) - 1e-6).all()


def test_model_file_names_known_features() -> None:
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    model = load_rank_model()
    assert set(model.features) <= set(FEATURES) and len(model.weights) == len(model.features)
    assert data["made_by"]


def test_logistic_fit_separates_a_learnable_signal() -> None:
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for _ in range(40):
        x = rng.normal(size=(30, 3))
        y = (x[:, 0] + 0.1 * rng.normal(size=30) > 1.0).astype(float)
        xs.append(x)
        ys.append(y)
    w, _ = fit_logistic(xs, ys)
    assert w[0] > 2 * max(abs(w[1]), abs(w[2]))
