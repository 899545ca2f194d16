"""The RealTime QA questions whose gold article is not in the top 10, and where each ranking puts it.

    python bench/retrieval_misses.py [--rtqa /tmp/rtqa] [--as-of] [--previous] [--json FILE]

Per missed question: the gold article's place among articles (0-based, the place of its best chunk)
in BM25 alone, in the dense ranking alone (3,000 chunks deep each) and in the fused ranking (before
the date and focus factors, the sentence stage and the top-k selection); the chunks of the gold
article that hold the answer string; how many distinct articles the top 10 holds; and the top 10's
outlets, titles and dates. With --previous: the
defaults before issue 10 (no focus prior, no distinct articles, BM25 b 0.75).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tune_dates import bm25_parameters  # noqa: E402

import rag.bm25  # noqa: E402
from rag.evaluate import norm, read_questions  # noqa: E402
from rag.retrieve import Retriever, RetrieveSettings, get_retriever  # noqa: E402
from rag.store import chunk_id  # noqa: E402
from rag.timeexpr import parse_date  # noqa: E402

DEPTH = 3000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rtqa", type=Path, default=Path("/tmp/rtqa"))
    ap.add_argument("--as-of", action="store_true", help="ask each question on its question_date")
    ap.add_argument("--previous", action="store_true", help="the defaults before issue 10")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = read_questions(args.rtqa / "queries.jsonl")
    base = get_retriever(args.rtqa / "index")
    stored = base.stored
    settings = RetrieveSettings()
    b = rag.bm25.B
    if args.previous:
        settings, b = replace(settings, focus_threshold=0.0, distinct_articles_per_k=0.0), 0.75
    retriever = Retriever(stored, base.embedder, settings)
    by_url = {doc.url: doc_id for doc_id, doc in stored.documents.items()}

    def place(chunk_ids: list[str], gold: set[str]) -> int | None:
        """The gold article's place among the articles of a chunk ranking (0-based)."""
        seen: dict[str, None] = {}
        for row in chunk_ids:
            doc_id = stored.ref(row).doc_id
            if doc_id not in seen:
                seen[doc_id] = None
                if doc_id in gold:
                    return len(seen) - 1
        return None

    misses: list[dict[str, Any]] = []
    with bm25_parameters(stored, rag.bm25.K1, b):
        for r in rows:
            gold = {by_url[g["url"]] for g in r["gold"] if g.get("url") in by_url}
            q = retriever.analyse(r["question"], as_of=parse_date(r["question_date"]) if args.as_of else None)
            top = retriever.search_query(q, k=10)
            if any(p.doc_id in gold for p in top):
                continue
            fused = retriever._fused(q, retriever._filter(q))
            answer = norm(str(r.get("answer", "")).strip("“”\"' ."))
            holding = {}  # the gold article's chunks that hold the answer string
            for doc_id in gold:
                texts = [stored.chunk(chunk_id(doc_id, i)).text for i in range(stored.info(doc_id).chunks)]
                holding[doc_id] = [i for i, text in enumerate(texts) if answer and answer in norm(text)]
            misses.append(
                {
                    "id": r["id"],
                    "question": r["question"],
                    "answer": r.get("answer"),
                    "gold_titles": [stored.info(d).title for d in gold],
                    "bm25_place": place([c for c, _ in stored.lexical_search(q.terms, DEPTH)], gold),
                    "dense_place": place([c for c, _ in stored.dense_search(q.vector, DEPTH)], gold),
                    "fused_place": place(sorted(fused, key=lambda c: -fused[c]), gold),
                    "answer_chunks": holding,
                    "articles_in_top10": len({p.doc_id for p in top}),
                    "top10": [f"{p.outlet} | {p.date} | {p.title}" for p in top],
                }
            )
    report = {"questions": len(rows), "missed": len(misses), "as_of": args.as_of, "previous": args.previous}
    print(json.dumps({**report, "misses": misses}, indent=1, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps({**report, "misses": misses}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
