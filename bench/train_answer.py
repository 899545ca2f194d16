"""Learn the answer-sentence model (rag/answer_model.json) and check it on questions it did not see.

    python bench/train_answer.py [--rtqa /tmp/rtqa] [--seed-qa tests/data/seed_train.jsonl]
                                 [--check tests/data/seed_dev.jsonl tests/data/seed_fresh.jsonl
                                          ../shared/eval/seed_qa.jsonl]
                                 [--out rag/answer_model.json]

Data: every sentence of the passages retrieved for a question is a candidate; it is a positive
when it holds one of the question's answer strings. Questions: the RealTime QA dev weeks
(../shared/bench/README.md; the answer is the correct choice) and our own seed questions
(tests/data/seed_train.jsonl). The logistic model is fitted on both; the bars (quote, relative,
abstain) are chosen on the training questions by what a reader sees (precision of the quotes,
first quote answering, every answer found, abstaining when nothing answers).

Tried on the same held-out checks and dropped (2026-11-23; none paid on both the held-out weeks and
the seed files): a listwise (softmax) objective with Platt scaling; more passages (12); seed
questions weighted 2-5x, or alone; features for topic-removed similarity, the question's rarest
word, its first and last words, a question printed in an article, the headline, a declarative
rewrite of the question embedded, a low-rank bilinear question-sentence term; per-kind weights;
boosted trees (depth 2, 60 rounds); scoring an outlet-scoped question among every outlet's
sentences (fixed the Post-only fighters case, broke two named-outlet questions of seed_dev).

Held out, never used for fitting or choosing: each RealTime QA week in turn (leave-one-week-out
on the model fitted without it) and the --check files (our dev questions, 80 fresh ones written
after the shipped model was fitted, and the shared set).

Also tried (2026-11-23, late) and dropped, on the same checks: refitting on the 90 training
questions plus the 80 fresh ones (fresh questions then no longer held out; seed_qa and seed_dev no
better than the shipped model); a phrase-run feature (longest run of the question's words in the
sentence); a predicate feature (the question's terms before its setting, "Who *led the American
side* in the virtual meeting"); count, slot-near-focus and no-new-words gates after the model.

Kept (2026-11-24): every sentence of the three best articles as a candidate (--whole-articles 3,
AnswerSettings.whole_articles), with the shipped model: RealTime QA answers 0.631 -> 0.660 (as_of) and
0.524 -> 0.544, seed_dev and seed_fresh exact up (docs/benchmarks.md). A refit on those candidates was
no better on the held-out weeks or seed files, so the model was kept. Tried with it and dropped:
scoring the added sentences against the passages' sentences only (their rarity, best and order), so
that they never change the passages' scores: RealTime QA 0.670 / 0.553, but seed_qa precision 0.788 ->
0.735 and first 0.828 -> 0.759; 5 articles (0.650 / 0.524); "last" and "take" as question words of
"how long did it last / take" (no change but one more wrong abstention on seed_fresh); a linear map of
the question vector trained on 956 SQuAD questions (answer sentence against the other sentences of its
paragraph): held out by article, within-paragraph top-1 0.814 -> 0.816, nothing to add.

Kept (2026-11-24): "who" asks for a person's name (answer._PERSON: two or more capitalised words, a
title and a name, a name that speaks), not any capitalised word: precision up on every seed file
(seed_qa 0.788 -> 0.812, seed_dev 0.944 -> 0.971, seed_fresh 0.838 -> 0.849), RealTime QA as_of 0.660 ->
0.670, nothing lower. Dropped: leaving the headline out of the candidates (seed_qa first 0.828 -> 0.793).

Kept (2026-11-24): for "how long", the sentences holding a duration are quoted first (answer._slot_first,
after the abstention): seed_qa exact and first 0.828 -> 0.862, seed_fresh exact 0.809 -> 0.824 and first
0.853 -> 0.868, nothing lower, RealTime QA unchanged. The same for dates and places changed nothing; for
figures it lost (seed_fresh exact 0.824 -> 0.809, seed_train 0.792 -> 0.779), for names too (seed_dev
exact 0.939 -> 0.909, seed_fresh 0.824 -> 0.794). Dropped too: sentences that end in a
question mark left out (no change); a refit on today's candidates (seed_qa abstain 1.0 -> 0.939, seed_fresh
exact 0.809 -> 0.779, RealTime QA as_of 0.670 -> 0.631).
Kept too: "what figures ... for the number of X" asks for a number about X (rag/query.py): seed_fresh
first 0.868 -> 0.882, nothing else moved.

Tried (2026-11-24, second session) and dropped, shipped model unless said: the order features
(dense_order, lexical_order) with ties broken by the other measure instead of by retrieval order
(seed_qa first 0.862 -> 0.897 but precision 0.844 -> 0.771, seed_dev exact 0.939 -> 0.909; refitted
with --as-of: held-out weeks exact 0.583 -> 0.612 but first 0.544 -> 0.524, seed_qa abstain 0.97 ->
0.939 against the same refit without it); abstaining on the best sentence that holds the asked slot
for figures, durations and dates (figures: no change; durations and dates: seed_qa exact 0.862 ->
0.828, seed_fresh abstain 0.925 -> 0.9); a multi-sentence question's preamble ("A bipartisan group of
senators announced ... Which measure did lawmakers leave out?") read as context, the asked sentence as
the question (RealTime QA as_of 0.670 -> 0.660); the similarity of the names a sentence adds to the
question's focus ("which *company*" against "Bed Bath & Beyond"), measured before any fit: AUC of
answering sentences against the others 0.74 on the RealTime QA weeks but 0.68 within the ten best,
0.59 and 0.55 on seed_train and seed_fresh, too weak to try. A cross-encoder trained on SQuAD was
not tried: the full set is in no repository that can be fetched here (Git LFS pointers only).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer import FEATURES, AnswerSettings, candidates, features, term_coverage  # noqa: E402
from rag.evaluate import norm, read_questions  # noqa: E402
from rag.outlets import outlet_key  # noqa: E402
from rag.rank import fit_logistic  # noqa: E402
from rag.retrieve import Retriever, get_retriever  # noqa: E402
from rag.timeexpr import parse_date  # noqa: E402


@dataclass
class Example:
    qid: str
    group: str  # the RealTime QA week, or "seed"
    x: np.ndarray  # [sentences x features]
    y: np.ndarray  # [sentences] 1 = holds an answer string
    outlets: list[str]  # outlet of each sentence
    gold_outlets: set[str]
    groups: list[list[str]]  # answer groups (seed questions); one group for RealTime QA
    holds: list[list[int]]  # per sentence, the answer groups it holds
    coverage: float
    answerable: bool


def _strings(row: dict[str, Any]) -> list[list[str]]:
    if "answer_groups" in row:
        return [[norm(a) for a in g] for g in row["answer_groups"]]
    answer = norm(str(row.get("answer", "")).strip("“”\"' ."))
    return [[answer]] if answer else []


def collect(
    retriever: Retriever,
    rows: list[dict[str, Any]],
    group_of: Any,
    as_of: bool = False,
    whole_articles: int = AnswerSettings().whole_articles,
) -> list[Example]:
    out = []
    for row in rows:
        day = parse_date(row["question_date"]) if as_of and row.get("question_date") else None
        q = retriever.analyse(row["question"], row.get("history") or [], row.get("outlets"), as_of=day)
        passages = retriever.search_query(q, k=AnswerSettings().passages)
        found = candidates(retriever, passages, AnswerSettings().min_words, whole_articles)
        groups = _strings(row)
        if not found:
            continue
        texts = [norm(c.text) for c in found]
        holds = [[i for i, g in enumerate(groups) if any(a and a in t for a in g)] for t in texts]
        out.append(
            Example(
                qid=row["id"],
                group=group_of(row),
                x=features(q, found, retriever.embedder),
                y=np.array([1.0 if h else 0.0 for h in holds]),
                outlets=[outlet_key(c.passage.outlet) for c in found],
                gold_outlets={outlet_key(o) for o in row.get("gold_outlets") or []},
                groups=groups,
                holds=holds,
                coverage=term_coverage(retriever, q),
                answerable=bool(groups),
            )
        )
        print(".", end="", flush=True)
    print(flush=True)
    return out


def fit(examples: list[Example], l2: float = 1.0) -> tuple[np.ndarray, float]:
    answerable = [e for e in examples if e.answerable]
    return fit_logistic([e.x for e in answerable], [e.y for e in answerable], l2)


def simulate(
    e: Example, p: np.ndarray, bars: tuple[float, float, float], coverage_weight: float, max_quotes: int = 5
) -> dict[str, float]:
    """What a reader would see with these bars (the composition's de-duplication aside)."""
    quote_bar, relative_cut, abstain_bar = bars
    order = np.argsort(-p)
    confidence = p[order[0]] - coverage_weight * (1 - e.coverage)
    abstained = confidence < abstain_bar
    out: dict[str, float] = {"abstain": float(abstained == (not e.answerable))}
    if not e.answerable:
        return out
    chosen = (
        [] if abstained else [int(i) for i in order if p[i] >= max(quote_bar, relative_cut * p[order[0]])][:max_quotes]
    )
    if not abstained and not chosen:
        chosen = [int(order[0])]
    gold_ok = (lambda i: e.outlets[i] in e.gold_outlets) if e.gold_outlets else (lambda i: True)
    found = {g for i in chosen if gold_ok(i) for g in e.holds[i]}
    out["exact"] = float(len(found) == len(e.groups))
    out["first"] = float(bool(chosen) and bool(e.holds[chosen[0]]))
    out["quotes"] = float(len(chosen))
    out["answering"] = float(sum(1 for i in chosen if e.holds[i]))
    out["match"] = float(bool(found))
    return out


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    def mean(key: str) -> float:
        vals = [r[key] for r in rows if key in r]
        return round(float(np.mean(vals)), 3) if vals else float("nan")

    quotes = sum(r.get("quotes", 0) for r in rows)
    return {
        "exact": mean("exact"),
        "precision": round(sum(r.get("answering", 0) for r in rows) / quotes, 3) if quotes else float("nan"),
        "first": mean("first"),
        "abstain": mean("abstain"),
        "match": mean("match"),
    }


def probabilities(e: Example, w: np.ndarray, b: float) -> np.ndarray:
    return 1 / (1 + np.exp(-(e.x.astype(np.float64) @ w + b)))


GRID = [
    (qb, rc, ab)
    for qb in (0.2, 0.3, 0.4, 0.5, 0.6)
    for rc in (0.5, 0.6, 0.7, 0.8, 0.9)
    for ab in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
]


def objective(m: dict[str, float]) -> float:
    # What the issue asks a reader to see: answers found, quotes on point, the first one answering,
    # and abstaining only when nothing answers. NaN (no such questions) counts as neutral.
    vals = [m[k] for k in ("exact", "precision", "first", "abstain") if not np.isnan(m[k])]
    return float(np.mean(vals)) + 0.5 * min(vals)


def choose_bars(examples: list[Example], w: np.ndarray, b: float, coverage_weight: float) -> tuple[float, float, float]:
    ps = [probabilities(e, w, b) for e in examples]
    best, best_score = GRID[0], -1.0
    for bars in GRID:
        # Seed-style questions and RealTime QA weigh the same, whatever their counts.
        parts = []
        for group in {e.group == "seed" for e in examples}:
            rows = [
                simulate(e, p, bars, coverage_weight)
                for e, p in zip(examples, ps, strict=True)
                if (e.group == "seed") == group
            ]
            parts.append(objective(summarise(rows)))
        score = float(np.mean(parts))
        if score > best_score:
            best, best_score = bars, score
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtqa", type=Path, default=Path("/tmp/rtqa"))
    ap.add_argument("--seed-qa", type=Path, default=Path("tests/data/seed_train.jsonl"))
    ap.add_argument("--seed-index", type=Path, default=Path("index"))
    ap.add_argument(
        "--check",
        type=Path,
        nargs="*",
        default=[
            Path("tests/data/seed_dev.jsonl"),
            Path("tests/data/seed_fresh.jsonl"),
            Path("../shared/eval/seed_qa.jsonl"),
        ],
    )
    ap.add_argument("--out", type=Path, default=Path("rag/answer_model.json"))
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--index", type=Path, default=None, help="the RealTime QA index (default RTQA/index)")
    ap.add_argument("--lazy-sentences", action="store_true", help="experiments: embed sentences on first use")
    ap.add_argument("--report", type=Path, default=None, help="also write the report to this JSON file")
    ap.add_argument("--as-of", action="store_true", help="ask each RealTime QA question on its question_date")
    ap.add_argument(
        "--whole-articles",
        type=int,
        default=AnswerSettings().whole_articles,
        help="candidates: every sentence of the best this many articles (AnswerSettings.whole_articles)",
    )
    args = ap.parse_args()
    cw = AnswerSettings().coverage_weight

    seed_retriever = get_retriever(args.seed_index)
    seeds = collect(seed_retriever, read_questions(args.seed_qa), lambda r: "seed", whole_articles=args.whole_articles)
    rtqa: list[Example] = []
    rtqa_index = args.index or args.rtqa / "index"
    if (args.rtqa / "queries.jsonl").exists() and (rtqa_index / "manifest.json").exists():
        if args.lazy_sentences:
            from lazy_sentences import lazy_retriever

            rtqa_retriever = lazy_retriever(rtqa_index)
        else:
            rtqa_retriever = get_retriever(rtqa_index)
        rtqa = collect(
            rtqa_retriever,
            read_questions(args.rtqa / "queries.jsonl"),
            lambda r: re.sub(r"_\d+$", "", r["id"]),
            as_of=args.as_of,
            whole_articles=args.whole_articles,
        )
    examples = seeds + rtqa
    report: dict[str, Any] = {"features": list(FEATURES), "questions": {"seed": len(seeds), "rtqa": len(rtqa)}}

    # Held-out weeks: fit and choose the bars without the week, score the week.
    weeks = sorted({e.group for e in rtqa})
    held: list[dict[str, float]] = []
    for week in weeks:
        train = [e for e in examples if e.group != week]
        w, b = fit(train, args.l2)
        bars = choose_bars(train, w, b, cw)
        held += [simulate(e, probabilities(e, w, b), bars, cw) for e in rtqa if e.group == week]
    if held:
        report["rtqa_held_out_weeks"] = summarise(held)

    w, b = fit(examples, args.l2)
    bars = choose_bars(examples, w, b, cw)
    report["bars"] = bars
    report["train"] = {
        "seed": summarise([simulate(e, probabilities(e, w, b), bars, cw) for e in seeds]),
        "rtqa": summarise([simulate(e, probabilities(e, w, b), bars, cw) for e in rtqa]) if rtqa else None,
    }
    for path in args.check:
        if path.exists():
            check = collect(seed_retriever, read_questions(path), lambda r: "check", whole_articles=args.whole_articles)
            report[f"held_out {path.name}"] = summarise([simulate(e, probabilities(e, w, b), bars, cw) for e in check])
    model = {
        "features": list(FEATURES),
        "weights": [round(float(v), 4) for v in w],
        "bias": round(b, 4),
        "quote_bar": bars[0],
        "relative_cut": bars[1],
        "abstain_bar": bars[2],
        "trained_on": f"{len(seeds)} seed questions ({args.seed_qa}) + {len(rtqa)} RealTime QA dev questions",
        "made_by": "bench/train_answer.py",
    }
    args.out.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
    if args.report:
        args.report.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
