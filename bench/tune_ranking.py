"""Choose the ranking settings of issue 10 by week-fold cross-validation on RealTime QA, report held-out weeks.

    python bench/tune_ranking.py [--rtqa /tmp/rtqa] [--as-of] [--json FILE]

Searched jointly (the shipped defaults are one of the points): RetrieveSettings' article focus prior
(`focus_threshold`, `focus_power`), `distinct_articles_per_k` (each article once in the top k when the
candidates hold enough articles) and BM25's length normalisation b (rag/bm25.py). Each week is held
out in turn: the setting with the best mean MRR@10 + hits@10 (then hits@5) on the other weeks is
scored on it. Reported, article level (rag/evaluate.py), all on the same questions and chunks:
  * the held-out figures of that search, and what each week's fold chose;
  * BM25 alone (bm25s defaults k1 1.5, b 0.75; with b 0.6; and with the focus prior and the
    distinct-articles rule), the previous defaults and the shipped ones, none of which is fitted;
  * one idea at a time on top of the shipped defaults, each a family of settings cross-validated
    with the shipped value among them (held-out figures, and each setting on all questions): the
    kept ones (their "off"), and those tried and not adopted: a deeper
    pool alone, article evidence (a chunk gains a share of its article's other best chunk), article
    fusion (the rankings also read as rankings of articles), dense Rocchio feedback, RRF k, the
    candidates' depth, the rankings' weights, BM25 k1, the sentence stage. (A same-story penalty,
    cosine between passages, did nothing at 0.9 and cost hits@10 at 0.85: commit b1bb296 has it.)
  * retrieve p50/p95 of the shipped defaults over the questions, in a warm process (second pass).
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tune_dates import PLAIN_BM25, Benchmark, bm25_parameters, metrics, ranks, tuning_args, week_folds  # noqa: E402

import rag.bm25  # noqa: E402
from rag.query import Query  # noqa: E402
from rag.retrieve import Retriever, RetrieveSettings  # noqa: E402
from rag.store import Filter  # noqa: E402
from rag.timeexpr import parse_date  # noqa: E402

SHIPPED_B = rag.bm25.B
JOINT = {
    "focus_threshold": (0.0, 0.75, 0.8, 0.85),
    "focus_power": (2.0, 4.0),
    "distinct_articles_per_k": (0.0, 2.0, 3.0),
    "bm25_b": (0.75, 0.6, 0.5),
}
PREVIOUS = {"focus_threshold": 0.0, "distinct_articles_per_k": 0.0, "bm25_b": 0.75}
SHIPPED_RANKING = {  # PLAIN_BM25 turns these off; this puts the shipped values back
    "focus_threshold": RetrieveSettings.focus_threshold,
    "distinct_articles_per_k": RetrieveSettings.distinct_articles_per_k,
    "bm25_b": SHIPPED_B,
}
# One idea at a time on top of the shipped defaults: each family holds "off" (the shipped value) first.
FAMILIES: dict[str, list[dict[str, Any]]] = {
    "article focus": [{"focus_threshold": 0.0}, {}],
    "distinct articles": [{"distinct_articles_per_k": 0.0}, {}],
    "BM25 b": [{"bm25_b": 0.75}, {}],
    # Without distinct articles, which brings the deeper pool with it.
    "deeper pool alone": [{"distinct_articles_per_k": 0.0}, {"distinct_articles_per_k": 0.0, "pool_articles": True}],
    "article evidence": [{}, {"article_weight": 0.1}, {"article_weight": 0.2}, {"article_weight": 0.3}],
    "article fusion": [{}, {"article_fusion": 0.25}, {"article_fusion": 0.5}],
    "Rocchio": [{}, {"rocchio_weight": 0.5}, {"rocchio_weight": 1.0}, {"rocchio_weight": 1.0, "rocchio_beta": 0.5}],
    "RRF k": [{}, {"rrf_k": 30.0}, {"rrf_k": 100.0}],
    "candidates": [{}, {"candidates": 30}, {"candidates": 100}],
    "ranking weights": [{}, {"dense_weight": 0.75}, {"dense_weight": 1.25}, {"lexical_weight": 0.75}],
    "BM25 k1": [{}, {"bm25_k1": 1.2}, {"bm25_k1": 2.0}],
    "sentence stage": [{}, {"sentence_weight": 0.0}, {"sentence_weight": 0.5}],
}


@dataclass(frozen=True)
class Extras:
    """The dropped ideas' settings, tried here only (Variant)."""

    pool_articles: bool = False
    article_weight: float = 0.0
    article_fusion: float = 0.0
    rocchio_weight: float = 0.0
    rocchio_docs: int = 10
    rocchio_beta: float = 1.0


class Variant(Retriever):
    """The shipped retriever with the dropped ideas grafted on, for the ablation families."""

    def __init__(self, base: Retriever, settings: RetrieveSettings, extras: Extras) -> None:
        super().__init__(base.stored, base.embedder, settings)
        self.extras = extras
        self._focus = base._focus  # read once for every variant

    def _pool_size(self, ranked: list[tuple[str, float]], k: int, articles: int) -> int:
        return super()._pool_size(ranked, k, k if self.extras.pool_articles else articles)

    def _feedback(self, q: Query, scores: dict[str, float], mask: Filter | None) -> list[tuple[float, list[str]]]:
        found = super()._feedback(q, scores, mask)
        e = self.extras
        if e.rocchio_weight > 0:
            top = [row for row, _ in sorted(scores.items(), key=lambda item: -item[1])[: e.rocchio_docs]]
            moved = q.vector + e.rocchio_beta * self.stored.vectors(top).mean(axis=0)
            moved = (moved / (np.linalg.norm(moved) or 1.0)).astype(np.float32)
            found.append((e.rocchio_weight, self.dense_rows(moved, self.settings.candidates, mask)))
        return found

    def _fuse(self, rankings: list[tuple[float, list[str]]]) -> dict[str, float]:
        scores = super()._fuse(rankings)
        a = self.extras.article_fusion
        if a <= 0:
            return scores
        articles: dict[str, float] = {}
        for weight, rows in rankings:
            seen: dict[str, None] = {}
            for row in rows:
                doc_id = self.stored.ref(row).doc_id
                if doc_id not in seen:
                    seen[doc_id] = None
                    articles[doc_id] = articles.get(doc_id, 0.0) + weight / (self.settings.rrf_k + len(seen))
        return {row: (1 - a) * s + a * articles[self.stored.ref(row).doc_id] for row, s in scores.items()}

    def select(self, ranked: list[tuple[str, float]], k: int) -> list[tuple[str, float]]:
        w = self.extras.article_weight
        if w > 0:
            docs = [self.stored.ref(row).doc_id for row, _ in ranked]
            best: dict[str, list[float]] = {}
            for doc_id, (_, score) in zip(docs, ranked, strict=True):
                if len(best.setdefault(doc_id, [])) < 2:
                    best[doc_id].append(score)
            boosted, seen = [], set()
            for doc_id, (row, score) in zip(docs, ranked, strict=True):
                top = best[doc_id]
                other = top[0] if doc_id in seen else (top[1] if len(top) > 1 else 0.0)
                seen.add(doc_id)
                boosted.append((row, score + w * other))
            ranked = sorted(boosted, key=lambda item: -item[1])
        return super().select(ranked, k)


def main() -> None:
    args = tuning_args(__doc__)
    bench = Benchmark.load(args.rtqa)
    rows, base, gold, weeks = bench.rows, bench.retriever, bench.gold, bench.weeks
    queries = bench.queries(args.as_of)
    cache: dict[str, list[int | None]] = {}

    def run(config: dict[str, Any]) -> list[int | None]:
        """Ranks of the gold article with the shipped defaults changed by `config`."""
        key = json.dumps(config, sort_keys=True)
        if key not in cache:
            c = dict(config)
            k1, b = c.pop("bm25_k1", 1.5), c.pop("bm25_b", SHIPPED_B)
            plain = PLAIN_BM25 if c.pop("plain_bm25", False) else {}
            extras = Extras(**{f: c.pop(f) for f in list(c) if f in Extras.__dataclass_fields__})
            settings = replace(RetrieveSettings(), **{**plain, **c})
            with bm25_parameters(base.stored, k1, b):
                cache[key] = ranks(Variant(base, settings, extras), queries, gold)
            print(f"{len(cache)} {key} {metrics(cache[key])}", file=sys.stderr, flush=True)
        return cache[key]

    def cross_validated(configs: list[dict[str, Any]]) -> dict[str, Any]:
        """Held-out figures of choosing among `configs` per fold, how often each was chosen, and each
        one's figures on all questions."""
        table = [run(c) for c in configs]
        held_out, chosen = week_folds(table, weeks, configs, lambda m: (m["mrr@10"] + m["hits@10"], m["hits@5"]))
        label = {json.dumps(c, sort_keys=True): c for c in configs}
        return {
            "held_out": metrics(held_out),
            "chosen_weeks": Counter(json.dumps(c, sort_keys=True) for c in chosen.values()),
            "all_questions": {key: metrics(run(c)) for key, c in label.items()},
        }

    def timed(settings: RetrieveSettings, b: float) -> dict[str, float]:
        """retrieve (analysis + search, k=10) p50/p95 in ms over the questions, second pass of two."""
        retriever = Retriever(base.stored, base.embedder, settings)
        timings: list[float] = []
        with bm25_parameters(base.stored, 1.5, b):
            for _ in range(2):  # a warm process: each article's focus is read once
                timings.clear()
                for r in rows:
                    day = parse_date(r["question_date"]) if args.as_of else None
                    started = time.perf_counter()
                    retriever.search(r["question"], k=10, as_of=day)
                    timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        return {"p50": round(statistics.median(timings), 1), "p95": round(timings[int(0.95 * (len(timings) - 1))], 1)}

    joint = [dict(zip(JOINT, values, strict=True)) for values in itertools.product(*JOINT.values())]
    joint = [c for c in joint if c["focus_threshold"] > 0 or c["focus_power"] == JOINT["focus_power"][0]]
    baselines = {  # first: none is fitted, and a mistake in them shows at once
        "bm25": metrics(run({"plain_bm25": True, "bm25_b": 0.75})),
        "bm25_b0.6": metrics(run({"plain_bm25": True, "bm25_b": 0.6})),
        "bm25_with_focus_and_distinct_articles": metrics(run({"plain_bm25": True, **SHIPPED_RANKING})),
        "previous_defaults": metrics(run(PREVIOUS)),
        "shipped_defaults": metrics(run({})),
    }
    joint_result = cross_validated(joint)
    previous = {k: v for k, v in PREVIOUS.items() if k != "bm25_b"}  # the RetrieveSettings part
    report: dict[str, Any] = {
        "questions": len(rows),
        "weeks": len(set(weeks)),
        "as_of": args.as_of,
        "joint_cross_validated_held_out": joint_result["held_out"],
        "joint_chosen_weeks": joint_result["chosen_weeks"],
        **baselines,
        "one_idea_at_a_time": {name: cross_validated(family) for name, family in FAMILIES.items()},
        "retrieve_ms_warm": {
            "chunks": base.stored.size,
            "previous_defaults": timed(replace(RetrieveSettings(), **previous), PREVIOUS["bm25_b"]),
            "shipped_defaults": timed(RetrieveSettings(), SHIPPED_B),
        },
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
