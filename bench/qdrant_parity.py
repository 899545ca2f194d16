"""Does retrieval from the Qdrant store match the default store? Article-level hits@10 on RealTime QA.

    python bench/qdrant_parity.py [--rtqa /tmp/rtqa] [--out /tmp/qdrant-bench] [--articles 500]
                                  [--qdrant-url http://localhost:6333]

Takes the gold articles of RTQA/queries.jsonl first, then others (a seeded sample), up to
--articles; copies them to OUT/articles (never into the repository: the texts have no licence).
Each store is built in a copy of RTQA/index with those articles as its sources, so every text is
found already embedded there (rag/index.py KnownVectors) and nothing is embedded again: the
default store keeps its segments and drops the other articles; the Qdrant store is a move to
another store, built fresh from the copy's vectors. Without --qdrant-url, Qdrant runs in
qdrant-client's local mode in the index directory (slow: it persists each point on its own).

Scored on the questions whose gold article (matched by URL, as rag/evaluate.py does) is among the
articles, in each retrieval mode of rag/evaluate.py; also how often the two stores give the same
top 10. Prints a markdown table and writes OUT/result.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.evaluate import MODES, evaluate, read_questions  # noqa: E402
from rag.index import BuildSettings, build_index  # noqa: E402
from rag.retrieve import Retriever, get_retriever  # noqa: E402
from rag.store import read_manifest  # noqa: E402


def pick_articles(rtqa: Path, rows: list[dict[str, Any]], count: int, seed: int = 0) -> tuple[list[str], int]:
    """File names: the gold articles' first (in question order), then a seeded sample of the rest;
    and how many are gold."""
    by_url: dict[str, str] = {}
    for line in (rtqa / "articles_manifest.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if (rtqa / "articles" / entry["file"]).exists():
            by_url.setdefault(entry["url"], entry["file"])
    gold = [by_url[g["url"]] for r in rows for g in r["gold"] if g.get("url") in by_url]
    chosen = list(dict.fromkeys(gold))[:count]
    rest = sorted(set(by_url.values()) - set(chosen))
    random.Random(seed).shuffle(rest)
    return chosen + rest[: count - len(chosen)], len(chosen)


def copy_articles(rtqa: Path, files: list[str], target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in files:
        shutil.copy2(rtqa / "articles" / name, target / name)


def build(rtqa: Path, articles: Path, index_dir: Path, settings: BuildSettings | None, reuse: bool) -> dict[str, Any]:
    """A copy of the benchmark index, updated to hold exactly `articles` (texts already embedded there)."""
    if reuse and (index_dir / "result-build.json").exists():
        return dict(json.loads((index_dir / "result-build.json").read_text(encoding="utf-8")))
    if index_dir.exists():
        shutil.rmtree(index_dir)
    shutil.copytree(rtqa / "index", index_dir, ignore=shutil.ignore_patterns(".lock"))
    started = time.perf_counter()
    report = build_index([articles], index_dir, settings=settings)
    seconds = time.perf_counter() - started
    print(f"{index_dir.name}: {report.summary()}", flush=True)
    result = {
        "documents": report.documents,
        "chunks": report.chunks,
        "embedded": report.embedded,
        "sentences_embedded": report.sentences_embedded,
        "seconds": round(seconds, 1),
        "store": read_manifest(index_dir).settings.get("store", "segments"),
    }
    (index_dir / "result-build.json").write_text(json.dumps(result), encoding="utf-8")
    return result


def top10(retriever: Retriever, rows: list[dict[str, Any]]) -> list[list[str]]:
    return [[p.chunk_id for p in retriever.search(r["question"], k=10)] for r in rows]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rtqa", type=Path, default=Path("/tmp/rtqa"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/qdrant-bench"))
    ap.add_argument("--articles", type=int, default=500)
    ap.add_argument("--qdrant-url", default=None, help="a Qdrant server (default: local mode)")
    ap.add_argument("--reuse", action="store_true", help="keep the indexes a previous run built in OUT")
    args = ap.parse_args()
    if args.out.resolve().is_relative_to(ROOT):
        ap.error("--out must be outside the repository (benchmark texts stay out of it)")

    rows = read_questions(args.rtqa / "queries.jsonl")
    files, gold = pick_articles(args.rtqa, rows, args.articles)
    articles = args.out / "articles"
    if not (args.reuse and articles.is_dir()):
        copy_articles(args.rtqa, files, articles)
    builds = {
        "segments (FAISS + bm25)": build(args.rtqa, articles, args.out / "index-segments", None, args.reuse),
        "qdrant" + (" server" if args.qdrant_url else " local mode"): build(
            args.rtqa,
            articles,
            args.out / "index-qdrant",
            BuildSettings(store="qdrant", qdrant_url=args.qdrant_url),
            args.reuse,
        ),
    }
    dirs = dict(zip(builds, (args.out / "index-segments", args.out / "index-qdrant"), strict=True))

    retrievers = {name: get_retriever(path) for name, path in dirs.items()}
    urls = {d.url for d in next(iter(retrievers.values())).stored.documents.values()}
    answerable = [r for r in rows if any(g.get("url") in urls for g in r["gold"])]
    print(f"{len(answerable)} of {len(rows)} questions have their gold article among the {len(files)}", flush=True)

    scores: dict[str, dict[str, Any]] = {}
    for name, base in retrievers.items():
        scores[name] = {}
        # The learned ranking is left out: fitted on bm25s scores of another index, not a store comparison.
        # "as of": each question asked on its own day, so that date filters (payload ranges) run too.
        for mode, overrides, as_of in (
            *((m, MODES[m], False) for m in ("hybrid", "rrf", "bm25", "dense")),
            ("hybrid as of", MODES["hybrid"], True),
        ):
            retriever = Retriever(base.stored, base.embedder, replace(base.settings, **overrides))
            report = evaluate(retriever, answerable, k=10, ask=False, as_of=as_of)
            scores[name][mode] = {k: report[k] for k in ("hits@5", "hits@10", "mrr@10", "retrieve_ms")}
    first, second = (top10(r, answerable) for r in retrievers.values())
    same = sum(a == b for a, b in zip(first, second, strict=True)) / max(1, len(answerable))
    names = list(builds)
    gap = round(scores[names[1]]["hybrid"]["hits@10"] - scores[names[0]]["hybrid"]["hits@10"], 3)

    print("\n| store | mode | hits@5 | hits@10 | MRR@10 | retrieve p50 ms |\n|---|---|---|---|---|---|")
    for name in names:
        for mode, s in scores[name].items():
            p50 = s["retrieve_ms"]["p50"]
            print(f"| {name} | {mode} | {s['hits@5']} | {s['hits@10']} | {s['mrr@10']} | {p50} |")
    print(f"\nhits@10 (hybrid), Qdrant minus segments: {gap:+.3f}; identical top 10: {same:.1%} of questions")
    print("\n| store | build s | documents | chunks | embedded |\n|---|---|---|---|---|")
    for name, b in builds.items():
        print(f"| {name} | {b['seconds']} | {b['documents']} | {b['chunks']} | {b['embedded']} |")

    result = {
        "articles": len(files),
        "gold_articles": gold,
        "questions": len(answerable),
        "questions_total": len(rows),
        "builds": builds,
        "scores": scores,
        "hits@10_gap": gap,
        "identical_top10": round(same, 3),
        "within_0.01": abs(gap) <= 0.01,
    }
    (args.out / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"\nwritten {args.out / 'result.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
