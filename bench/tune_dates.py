"""Choose the date settings (issue 11) by week-fold cross-validation on RealTime QA, report held-out weeks.

    python bench/tune_dates.py [--rtqa /tmp/rtqa] [--json FILE]

Each question is asked on its own `question_date` (as_of). The settings searched are the soft
window's `window_miss` and the recency prior's `recency_weight` / `recency_days` (rag/retrieve.py
RetrieveSettings). Each week is held out in turn: the setting with the best mean MRR@10 (then
hits@10) on the other weeks is scored on it. Reported: the held-out figures of the chosen settings,
the shipped defaults on all questions, and BM25 given the same dates (same windows and priors,
dense and sentence stage off), and both without as_of; and the share of questions whose answer
quotes the right choice, with and without as_of (bench/answer_baseline.py --as-of [--window] is
the BM25-window baseline for it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rag.bm25  # noqa: E402
from rag.answer import answer_question  # noqa: E402
from rag.evaluate import MODES, norm, read_questions  # noqa: E402
from rag.query import Query  # noqa: E402
from rag.retrieve import Retriever, RetrieveSettings, get_retriever  # noqa: E402
from rag.store import Store  # noqa: E402
from rag.timeexpr import parse_date  # noqa: E402

GRID = {
    "window_miss": (0.1, 0.3, 0.5),
    "recency_weight": (0.0, 0.1, 0.3, 0.5, 0.7),
    "recency_days": (7.0, 14.0, 30.0),
}


# BM25 alone, the baseline of issue 10: bm25s's scoring (k1 1.5, b 0.75, with bm25_parameters), without the
# article focus prior or the distinct-articles rule of the shipped ranking.
PLAIN_BM25 = {**MODES["bm25"], "focus_threshold": 0.0, "distinct_articles_per_k": 0.0}


@contextmanager
def bm25_parameters(stored: Store, k1: float = 1.5, b: float = 0.75) -> Iterator[None]:
    """BM25's k1 and b (module constants of rag/bm25.py, read when scores are computed) changed for a while."""
    shipped = rag.bm25.K1, rag.bm25.B
    rag.bm25.K1, rag.bm25.B = k1, b
    stored._last_bm25 = None  # type: ignore[attr-defined]  # the last question's scores, stale with new k1/b
    try:
        yield
    finally:
        rag.bm25.K1, rag.bm25.B = shipped
        stored._last_bm25 = None  # type: ignore[attr-defined]


def ranks(retriever: Retriever, queries: list[Query], gold: list[set[str]]) -> list[int | None]:
    out: list[int | None] = []
    for q, urls in zip(queries, gold, strict=True):
        passages = retriever.search_query(q, k=10)
        out.append(next((i for i, p in enumerate(passages) if p.url in urls), None))
    return out


def metrics(found: list[int | None]) -> dict[str, float]:
    n = len(found) or 1
    return {
        "hits@5": round(sum(r is not None and r < 5 for r in found) / n, 3),
        "hits@10": round(sum(r is not None for r in found) / n, 3),
        "mrr@10": round(sum(1.0 / (r + 1) for r in found if r is not None) / n, 3),
    }


def week_folds(
    table: list[list[int | None]],
    weeks: list[str],
    configs: list[dict[str, Any]],
    objective: Callable[[dict[str, float]], tuple[float, float]],
) -> tuple[list[int | None], dict[str, dict[str, Any]]]:
    """Leave one week out: per week, the config whose `objective` is best on the other weeks, and
    its ranks on that week. Returns (held-out ranks per question, the config chosen per week)."""
    held_out: list[int | None] = [None] * len(weeks)
    chosen: dict[str, dict[str, Any]] = {}
    for week in sorted(set(weeks)):
        train = [i for i, w in enumerate(weeks) if w != week]
        best = max(range(len(configs)), key=lambda c: objective(metrics([table[c][i] for i in train])))
        chosen[week] = configs[best]
        for i, w in enumerate(weeks):
            if w == week:
                held_out[i] = table[best][i]
    return held_out, chosen


@dataclass(frozen=True)
class Benchmark:
    """The RealTime QA questions, their index, gold URLs and weeks (the CV folds) for the tune_ scripts."""

    rows: list[dict[str, Any]]
    retriever: Retriever
    gold: list[set[str]]
    weeks: list[str]

    @classmethod
    def load(cls, rtqa: Path) -> Benchmark:
        rows = read_questions(rtqa / "queries.jsonl")
        return cls(
            rows=rows,
            retriever=get_retriever(rtqa / "index"),
            gold=[{g["url"] for g in r["gold"] if g.get("url")} for r in rows],
            weeks=[r["id"].rsplit("_", 1)[0] for r in rows],
        )

    def queries(self, as_of: bool) -> list[Query]:
        """Each question analysed once, asked on its question_date with `as_of`."""
        return [
            self.retriever.analyse(r["question"], as_of=parse_date(r["question_date"]) if as_of else None)
            for r in self.rows
        ]


def tuning_args(doc: str | None, as_of: bool = True) -> argparse.Namespace:
    """The tune_ scripts' command line: --rtqa, --json and (where it means something) --as-of."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    ap.add_argument("--rtqa", type=Path, default=Path("/tmp/rtqa"))
    if as_of:
        ap.add_argument("--as-of", action="store_true", help="ask each question on its question_date")
    ap.add_argument("--json", type=Path)
    return ap.parse_args()


def main() -> None:
    args = tuning_args(__doc__, as_of=False)  # this script asks every question both ways
    bench = Benchmark.load(args.rtqa)
    rows, base, gold, weeks = bench.rows, bench.retriever, bench.gold, bench.weeks
    dated, undated = bench.queries(as_of=True), bench.queries(as_of=False)

    def run(settings: RetrieveSettings, queries: list[Query]) -> list[int | None]:
        return ranks(Retriever(base.stored, base.embedder, settings), queries, gold)

    configs = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    table: list[list[int | None]] = []
    for i, config in enumerate(configs):
        table.append(run(replace(base.settings, **config), dated))
        print(f"{i + 1}/{len(configs)} {config} {metrics(table[-1])}", file=sys.stderr, flush=True)

    held_out, chosen = week_folds(table, weeks, configs, lambda m: (m["mrr@10"], m["hits@10"]))

    defaults = RetrieveSettings()
    bm25 = replace(defaults, **PLAIN_BM25)

    def answered(queries: list[Query]) -> float:
        """Share of questions whose answer's quotes hold the right choice (rag/evaluate.py's answer_match)."""
        retriever = Retriever(base.stored, base.embedder, defaults)
        hits = 0
        for q, row in zip(queries, rows, strict=True):
            target = norm(str(row.get("answer", "")).strip("“”\"' "))
            quoted = " ".join(norm(x.text) for x in answer_question(retriever, q).quotes)
            hits += bool(target) and target in quoted
        return round(hits / len(rows), 3)

    with bm25_parameters(base.stored):
        bm25_as_of, bm25_no_as_of = metrics(run(bm25, dated)), metrics(run(bm25, undated))
    report: dict[str, Any] = {
        "questions": len(rows),
        "weeks": len(set(weeks)),
        "cross_validated_held_out": metrics(held_out),
        "chosen_per_week": chosen,
        "defaults_as_of": metrics(run(defaults, dated)),
        "bm25_as_of": bm25_as_of,
        "defaults_no_as_of": metrics(run(defaults, undated)),
        "bm25_no_as_of": bm25_no_as_of,
        "answer_match_as_of": answered(dated),
        "answer_match_no_as_of": answered(undated),
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
