"""Choose the pseudo-relevance feedback settings by week-fold cross-validation on RealTime QA.

    python bench/tune_feedback.py [--rtqa /tmp/rtqa] [--as-of] [--json FILE]

The settings searched are RetrieveSettings' `prf_weight` (0: no feedback), `prf_docs` and
`prf_terms` (rag/retrieve.py). Each week is held out in turn: the setting with the best mean
MRR@10 + hits@10 (then hits@5) on the other weeks is scored on it. Reported: the held-out figures,
beside BM25 alone and the fusion without feedback on the same questions and chunks, which need no
fitting. Dropped after this search: a headline-match boost (score x (1 + b x the question's
idf-weighted share of terms in the headline)), which raised MRR@10 but lost hits@10 at every b.
"""

from __future__ import annotations

import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tune_dates import PLAIN_BM25, Benchmark, bm25_parameters, metrics, ranks, tuning_args, week_folds  # noqa: E402

from rag.retrieve import Retriever, RetrieveSettings  # noqa: E402

GRID = {"prf_weight": (0.0, 0.5, 1.0, 1.5), "prf_docs": (5, 10), "prf_terms": (10, 20, 30)}


def main() -> None:
    args = tuning_args(__doc__)
    bench = Benchmark.load(args.rtqa)
    rows, base, gold, weeks = bench.rows, bench.retriever, bench.gold, bench.weeks
    queries = bench.queries(args.as_of)

    def run(settings: RetrieveSettings) -> list[int | None]:
        return ranks(Retriever(base.stored, base.embedder, settings), queries, gold)

    configs = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    configs = [c for c in configs if c["prf_weight"] > 0 or (c["prf_docs"], c["prf_terms"]) == (10, 20)]
    table = []
    for i, config in enumerate(configs):
        table.append(run(replace(RetrieveSettings(), **config)))
        print(f"{i + 1}/{len(configs)} {config} {metrics(table[-1])}", file=sys.stderr, flush=True)
    with bm25_parameters(base.stored):
        bm25 = metrics(run(replace(RetrieveSettings(), **PLAIN_BM25)))
    held_out, chosen = week_folds(table, weeks, configs, lambda m: (m["mrr@10"] + m["hits@10"], m["hits@5"]))
    report: dict[str, Any] = {
        "questions": len(rows),
        "weeks": len(set(weeks)),
        "as_of": args.as_of,
        "feedback_cross_validated_held_out": metrics(held_out),
        "chosen_per_week": chosen,
        "shipped_defaults": metrics(run(RetrieveSettings())),
        "fusion_without_feedback": metrics(run(replace(RetrieveSettings(), prf_weight=0.0))),
        "bm25": bm25,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
