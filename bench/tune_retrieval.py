"""Choose the retrieval ranking by cross-validation over RealTime QA weeks, and report held-out weeks.

    python bench/tune_retrieval.py [--rtqa /tmp/rtqa] [--out rag/retrieval_model.json] [--json FILE]

Each week is held out in turn: the ranking is fitted on the other weeks and scored on it. What is
reported is the held-out weeks' figures only (article level: hits@5, hits@10, MRR@10), beside
BM25 alone and the fixed reciprocal-rank fusion on the same questions and chunks. Candidate
rankers, each kept only if it pays on held-out weeks:
  * bm25, dense: one signal alone;
  * rrf: the two fused by reciprocal rank (the previous default);
  * learned: a logistic model over chunk features (BM25 and dense scores and ranks, the
    article's agreement: how many of its chunks are candidates and its best scores, the chunk's
    best sentence), fitted on the training weeks;
and the feature groups dropped one at a time from the learned model (an ablation), so that a
group stays only if the held-out figures say so. The final model, fitted on all weeks, is
written to --out with the list of features it uses.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.evaluate import norm, read_questions  # noqa: E402
from rag.rank import FEATURES, candidate_features, fit_logistic  # noqa: E402
from rag.retrieve import Retriever, by_rank, get_retriever  # noqa: E402


def article_metrics(ranked_urls: list[list[str]], gold: list[set[str]]) -> dict[str, float]:
    h5 = h10 = mrr = 0.0
    for urls, g in zip(ranked_urls, gold, strict=True):
        # Article level, as rag/evaluate.py: the rank of the first passage from a gold article.
        rank = next((i for i, u in enumerate(urls[:10]) if u in g), None)
        h5 += rank is not None and rank < 5
        h10 += rank is not None
        mrr += 1.0 / (rank + 1) if rank is not None else 0.0
    n = len(gold) or 1
    return {"hits@5": round(h5 / n, 3), "hits@10": round(h10 / n, 3), "mrr@10": round(mrr / n, 3)}


class _UrlOf:
    """url_of[chunk id]: the url of the chunk's article."""

    def __init__(self, retriever: Retriever) -> None:
        self._store = retriever.stored
        self._urls: dict[str, str] = {}

    def __getitem__(self, chunk_id: str) -> str:
        doc_id = self._store.ref(chunk_id).doc_id
        if doc_id not in self._urls:
            self._urls[doc_id] = self._store.documents[doc_id].url
        return self._urls[doc_id]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtqa", type=Path, default=Path("/tmp/rtqa"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--document-penalty", type=float, default=None, help="override RetrieveSettings")
    ap.add_argument("--pool-per-k", type=int, default=None, help="override RetrieveSettings")
    ap.add_argument("--index", type=Path, default=None, help="the RealTime QA index (default RTQA/index)")
    ap.add_argument("--lazy-sentences", action="store_true", help="experiments: embed sentences on first use")
    args = ap.parse_args()

    if args.lazy_sentences:
        from lazy_sentences import lazy_retriever

        base = lazy_retriever(args.index or args.rtqa / "index")
    else:
        base = get_retriever(args.index or args.rtqa / "index")
    overrides = {
        k: v for k, v in (("document_penalty", args.document_penalty), ("pool_per_k", args.pool_per_k)) if v is not None
    }
    if overrides:
        from dataclasses import replace as _replace

        base = Retriever(base.stored, base.embedder, _replace(base.settings, **overrides))
    rows = read_questions(args.rtqa / "queries.jsonl")
    weeks = [re.sub(r"_\d+$", "", r["id"]) for r in rows]
    gold = [{g["url"] for g in r["gold"] if g.get("url")} for r in rows]
    url_of = _UrlOf(base)

    # Candidates and features once per question.
    data = []
    started = time.perf_counter()
    for r in rows:
        q = base.analyse(r["question"])
        rows_, x = candidate_features(base, q, args.depth, sentences=not args.lazy_sentences)
        # A positive is a chunk of a gold article that holds the answer (when some chunk of it does),
        # else any chunk of a gold article: the ranking must find the passage, not just the article.
        in_gold = np.array([url_of[i] in gold[len(data)] for i in rows_], dtype=bool)
        answer = norm(str(r.get("answer", "")).strip("“”\"' ."))
        holds = np.array([bool(answer) and answer in norm(base.stored.chunk(str(i)).text) for i in rows_], dtype=bool)
        y = (in_gold & holds if (in_gold & holds).any() else in_gold).astype(np.float64)
        data.append((rows_, x, y))
    print(f"features for {len(rows)} questions in {time.perf_counter() - started:.1f}s", flush=True)

    def ranked_by(scores_of: Any, retriever: Retriever) -> list[list[str]]:
        out = []
        for rows_, x, _ in data:
            scores = scores_of(x)
            order = np.argsort(-scores, kind="stable")
            # select() discounts repeated outlets and articles by a factor: scores must be positive.
            picked = retriever.select([(str(rows_[i]), float(scores[i])) for i in order], 10)
            out.append([str(url_of[row]) for row, _ in picked])
        return out

    col = {f: i for i, f in enumerate(FEATURES)}
    fixed = {
        "bm25": lambda x: x[:, col["bm25_rr"]],
        "dense": lambda x: x[:, col["dense_rr"]],
        "rrf": lambda x: x[:, col["bm25_rr"]] + x[:, col["dense_rr"]],
    }
    groups = {
        "article": [f for f in FEATURES if f.startswith("doc_")],
        "sentence": [f for f in FEATURES if f.startswith("sent_")],
        "scores": [f for f in FEATURES if f.endswith(("_score", "_gap"))],
    }
    features = [f for f in FEATURES if not (args.lazy_sentences and f in groups["sentence"])]
    variants: dict[str, list[str]] = {"learned": features}
    for name, feats in groups.items():
        if set(feats) & set(features):
            variants[f"learned - {name}"] = [f for f in features if f not in feats]

    report: dict[str, Any] = {"questions": len(rows), "weeks": sorted(set(weeks)), "held_out": {}}
    for name, fn in fixed.items():
        report["held_out"][name] = article_metrics(ranked_by(fn, base), [gold[i] for i in range(len(rows))])
    for name, feats in variants.items():
        idx = [col[f] for f in feats]
        urls: list[list[str]] = [[] for _ in rows]
        for week in sorted(set(weeks)):
            train = [i for i, w in enumerate(weeks) if w != week]
            w, b = fit_logistic([data[i][1][:, idx] for i in train], [data[i][2] for i in train])
            for i, wk in enumerate(weeks):
                if wk != week:
                    continue
                rows_, x, _ = data[i]
                p = 1.0 / (1.0 + np.exp(-(x[:, idx] @ w + b)))
                order = np.argsort(-p, kind="stable")
                picked = base.select(by_rank([(str(rows_[j]), float(p[j])) for j in order]), 10)
                urls[i] = [str(url_of[row]) for row, _ in picked]
        report["held_out"][name] = article_metrics(urls, gold)
        print(name, report["held_out"][name], flush=True)
    for name in fixed:
        print(name, report["held_out"][name], flush=True)

    if args.out:
        # Article evidence is kept out of the shipped model: it lifts every chunk of a strong article alike
        # and the fit then weighs the chunk's own scores negatively, which on five articles (the seeds)
        # ranked an article's weakest passages first (seed recall@5 0.26 against 0.97).
        eligible = [v for v in variants if not any(f.startswith("doc_") for f in variants[v])]
        best = max(eligible, key=lambda v: report["held_out"][v]["mrr@10"] + report["held_out"][v]["hits@10"])
        feats = variants[best]
        idx = [col[f] for f in feats]
        w, b = fit_logistic([d[1][:, idx] for d in data], [d[2] for d in data])
        model = {
            "features": feats,
            "weights": [round(float(v), 5) for v in w],
            "bias": round(float(b), 5),
            "depth": args.depth,
            "chosen": best,
            "held_out": report["held_out"][best],
            "made_by": "bench/tune_retrieval.py",
        }
        args.out.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
        report["chosen"] = best
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
