"""The baseline for answers on RealTime QA: the best 120-word BM25 window, as one quote.

    python bench/answer_baseline.py [--rtqa /tmp/rtqa] [--as-of]

Every article (title prepended) is cut into 120-word windows (60-word stride); for each question
the window that BM25 ranks first is "the answer". Reported: the share of questions whose window
holds the correct choice's text, the same test as rag/evaluate.py's answer_match on our quotes.
With --as-of, only articles published on or before the question's date compete (issue 11).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.evaluate import norm, read_questions  # noqa: E402
from rag.ingest import read_document  # noqa: E402
from rag.lexical import LexicalIndex, tokenize  # noqa: E402
from rag.timeexpr import resolve_time  # noqa: E402

WORDS, STRIDE = 120, 60


def windows(rtqa: Path) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    dates: list[str] = []
    for path in sorted((rtqa / "articles").glob("*.txt")):
        doc = read_document(path)
        words = doc.body.split()
        for start in range(0, max(1, len(words) - WORDS + STRIDE), STRIDE):
            texts.append(f"{doc.title}\n" + " ".join(words[start : start + WORDS]))
            dates.append(doc.date)
    return texts, dates


def run(rtqa: Path, as_of: bool = False, window: bool = False) -> dict[str, float]:
    texts, dates = windows(rtqa)
    index = LexicalIndex.build(texts)
    day = np.array([d[:10].replace("/", "-") for d in dates])
    hits = []
    for row in read_questions(rtqa / "queries.jsonl"):
        mask = None
        if as_of and row.get("question_date"):
            asked = str(row["question_date"]).replace("/", "-")[:10]
            mask = (day <= asked) & (day != "")
            scope = resolve_time(row["question"], date.fromisoformat(asked))
            if window and scope.has_window:  # the question's own window, as a hard filter (2 days' slack)
                lo = (scope.since or date.min).isoformat()
                hi = (scope.until + timedelta(days=2)).isoformat() if scope.until else "9999"
                inside = mask & (day >= lo) & (day <= hi)
                mask = inside if inside.any() else mask
        top = index.search_terms(tokenize(row["question"]), 1, mask)
        target = norm(str(row.get("answer", "")).strip("“”\"' ."))
        hits.append(float(bool(top) and bool(target) and target in norm(texts[top[0][0]])))
    return {"windows": len(texts), "questions": len(hits), "answer_match": round(float(np.mean(hits)), 3)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtqa", type=Path, default=Path("/tmp/rtqa"))
    ap.add_argument("--as-of", action="store_true")
    ap.add_argument("--window", action="store_true", help="with --as-of: also the question's time window")
    args = ap.parse_args()
    print(
        json.dumps(
            {
                "bench": "answer_baseline",
                "as_of": args.as_of,
                "window": args.window,
                **run(args.rtqa, args.as_of, args.window),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
