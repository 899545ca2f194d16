"""A synthetic 1M-chunk index, opened as `rag.retrieve` opens one: search latency and resident memory.

The index is written through the store (SegmentStore.apply, one segment per batch of articles, as
successive builds leave it; HNSW per segment above HNSW_MIN_CHUNKS) from bench/synthetic.py's
articles (Zipf-like vocabulary, random unit vectors, ~20 chunks per article), into --dir (reused
when already there; a killed build resumes at its next batch). With --compact it is then merged
into one segment by `compact_index`, as `rag index --compact` does (its time and peak RSS reported).

The measurement runs in a fresh process: load_index (checksums verified, as rag.retrieve does),
a Retriever with a query embedder (the ONNX copy of all-MiniLM-L6-v2 that /tmp/rtqa/index keeps,
or --embedder hash: no model), then what `Retriever.search(question, k=5)` does, over --questions
questions generated from random chunks of the index (about 19 words, 10 of them taken from the
chunk): p50/p95 of the whole, of its two steps (analyse: the question embedded; search_query: the
rest), and of a dense top 60 and a BM25 top 60 alone; search_query with one outlet of 40, and
with a one-month since/until; RSS after load, after the questions, and the peak.

    python bench/million.py [--dir /tmp/million] [--chunks 1000000] [--questions 200] [--compact]

Prints a markdown table and writes JSON to DIR/result.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CODE = os.environ.get("RAG_BENCH_CODE", str(ROOT))  # where `rag` comes from (--rag-from: an earlier commit)
sys.path[:0] = [CODE, str(ROOT / "bench")]

from synthetic import DIM, Generator, question_from  # noqa: E402

from rag.index import HNSW_MIN_CHUNKS, compact_index  # noqa: E402
from rag.segments import SegmentStore  # noqa: E402
from rag.store import MANIFEST, load_index, read_manifest  # noqa: E402

CHUNKS_PER_ARTICLE = 20
BATCH_ARTICLES = 12_500  # 250k chunks per segment: above HNSW_MIN_CHUNKS, as a large build leaves it
RTQA_INDEX = Path("/tmp/rtqa/index")
MODEL = "synthetic-random-384"


def build(index_dir: Path, chunks: int, batch_articles: int = BATCH_ARTICLES) -> dict[str, Any]:
    articles = max(1, chunks // CHUNKS_PER_ARTICLE)
    batches = (articles + batch_articles - 1) // batch_articles
    done = 0
    if (index_dir / MANIFEST).exists():  # each batch is one commit: whole batches are there
        done = len(read_manifest(index_dir).documents) // batch_articles
    if done >= batches:
        return {"reused": True}
    store = load_index(index_dir, verify=False) if done else SegmentStore.empty(index_dir, MODEL, DIM)
    t_start = time.perf_counter()
    for b in range(done, batches):
        n = min(batch_articles, articles - b * batch_articles)
        t0 = time.perf_counter()
        batch = Generator(seed=1000 + b, chunks_per_article=CHUNKS_PER_ARTICLE).batch(n)
        t1 = time.perf_counter()
        store.apply(batch, (), settings={}, stats={}, hnsw_min_chunks=HNSW_MIN_CHUNKS, merge=False)
        t2 = time.perf_counter()
        del batch
        store = load_index(index_dir, verify=False)
        print(
            f"batch {b + 1}/{batches}: {n} articles generated in {t1 - t0:.0f} s, written in {t2 - t1:.0f} s; "
            f"{store.size:,} chunks, peak RSS {peak_rss_mb():,.0f} MB, load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    return {"reused": False, "build_s": round(time.perf_counter() - t_start, 1), "build_peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1)}


def make_embedder(kind: str) -> Any:
    if kind == "onnx":
        from rag.embed import load_query_embedder

        manifest = read_manifest(RTQA_INDEX)
        embedder = load_query_embedder(RTQA_INDEX, manifest.model, manifest.settings.get("query_onnx"))
        if type(embedder).__name__ != "OnnxEmbedder":
            raise SystemExit(f"no ONNX copy of the model in {RTQA_INDEX}: use --embedder hash")
        return embedder
    from rag.embed import HashEmbedder

    return HashEmbedder(dimension=DIM)


def measure(index_dir: Path, n_questions: int, embedder_kind: str) -> dict[str, Any]:
    """In this (fresh) process: load, then the questions."""
    import psutil

    from rag.retrieve import Retriever

    process = psutil.Process()
    rss0 = process.memory_info().rss
    embedder = make_embedder(embedder_kind)
    rss_model = process.memory_info().rss
    t0 = time.perf_counter()
    store = load_index(index_dir)  # checksums verified, as get_retriever loads
    retriever = Retriever(store, embedder)
    load_s = time.perf_counter() - t0
    rss_load = process.memory_info().rss
    rng = np.random.default_rng(42)
    doc_ids = list(store.manifest.documents)
    questions = []
    for _ in range(n_questions + 5):
        doc_id = doc_ids[int(rng.integers(0, len(doc_ids)))]
        index = int(rng.integers(0, store.info(doc_id).chunks))
        questions.append(question_from(store.chunk(f"{doc_id}:{index}").text, rng))
    for text in questions[:5]:  # warm-up: first-call costs (ONNX session) are not per question
        retriever.search(text, k=5)
    questions = questions[5:]
    whole, embed, rest, dense, lexical = [], [], [], [], []
    hits = 0
    for text in questions:
        t0 = time.perf_counter()
        q = retriever.analyse(text)  # what Retriever.search does: analyse (embed), then search_query
        t1 = time.perf_counter()
        passages = retriever.search_query(q, 5)
        t2 = time.perf_counter()
        hits += bool(passages)
        store.dense_search(q.vector, 60)
        t3 = time.perf_counter()
        store._last_bm25 = None  # the search has just scored these terms: time the scoring itself
        store.lexical_search(q.terms, 60)
        t4 = time.perf_counter()
        parts = (t2 - t0, t1 - t0, t2 - t1, t3 - t2, t4 - t3)
        for out, seconds in zip((whole, embed, rest, dense, lexical), parts, strict=True):
            out.append(seconds * 1000)
    rss_questions = process.memory_info().rss
    outlet_ms, month_ms = [], []
    for i, text in enumerate(questions[:50]):
        q = retriever.analyse(text, outlets=[store.outlets[i % len(store.outlets)]])
        t0 = time.perf_counter()
        retriever.search_query(q, 5)
        outlet_ms.append((time.perf_counter() - t0) * 1000)
        first = dt.date(2019 + i % 5, 1 + i % 12, 1)
        last = (first + dt.timedelta(days=31)).replace(day=1) - dt.timedelta(days=1)
        q = retriever.analyse(text, since=first, until=last)
        t0 = time.perf_counter()
        retriever.search_query(q, 5)
        month_ms.append((time.perf_counter() - t0) * 1000)
    rollup = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        rollup[key] = round(int(value.split()[0]) / 1024)
    full = process.memory_full_info()
    import rag

    return {
        "rag": str(Path(rag.__file__).parent),
        "chunks": store.size,
        "articles": len(store.manifest.documents),
        "segments": [f"{s['name']}:{s['faiss']}:{s['chunks']}" for s in store.manifest.segments],
        "embedder": embedder.name if embedder_kind == "hash" else f"onnx:{embedder.name}",
        "questions": len(questions),
        "answered": hits,
        "load_s": round(load_s, 1),
        "search": percentiles(whole),
        "embed": percentiles(embed),
        "search_query": percentiles(rest),
        "dense_top60": percentiles(dense),
        "bm25_top60": percentiles(lexical),
        "search_query_one_outlet": percentiles(outlet_ms),
        "search_query_one_month": percentiles(month_ms),
        "rss_start_mb": round(rss0 / 2**20),
        "rss_with_model_mb": round(rss_model / 2**20),
        "rss_after_load_mb": round(rss_load / 2**20),
        "rss_after_questions_mb": round(rss_questions / 2**20),
        "rss_end_mb": round(full.rss / 2**20),
        "uss_end_mb": round(full.uss / 2**20),
        "anonymous_end_mb": rollup.get("Anonymous"),
        "peak_rss_mb": peak_rss_mb(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def in_fresh_process(args: list[str], rag_from: Path | None = None) -> dict[str, Any]:
    env = dict(os.environ, RAG_BENCH_CODE=str(rag_from or ROOT))
    done = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the measuring process failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def table(label: str, r: dict[str, Any]) -> list[str]:
    def pp(key: str) -> str:
        return f"{r[key]['p50_ms']} / {r[key]['p95_ms']} ms"

    return [
        f"| {label}: {r['chunks']:,} chunks, {r['articles']:,} articles, {len(r['segments'])} segment(s) | |",
        f"| load (checksums verified) | {r['load_s']} s |",
        f"| `Retriever.search` p50 / p95 ({r['questions']} questions, {r['embedder']}) | {pp('search')} |",
        f"| of which: the question embedded (analyse) | {pp('embed')} |",
        f"| of which: the rest (search_query) | {pp('search_query')} |",
        f"| dense top 60 alone | {pp('dense_top60')} |",
        f"| BM25 top 60 alone | {pp('bm25_top60')} |",
        f"| search_query, one outlet of 40 | {pp('search_query_one_outlet')} |",
        f"| search_query, one month (since/until) | {pp('search_query_one_month')} |",
        f"| RSS: model / after load / after questions / peak | {r['rss_with_model_mb']:,} / "
        f"{r['rss_after_load_mb']:,} / {r['rss_after_questions_mb']:,} / {r['peak_rss_mb']:,} MB |",
        f"| RSS at the end: anonymous / pages of mapped files | {r['anonymous_end_mb']:,} / "
        f"{r['rss_end_mb'] - r['anonymous_end_mb']:,} MB |",
        f"| load average during the run | {' '.join(map(str, r['load_average']))} |",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/million"))
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--embedder", choices=("onnx", "hash"), default="onnx" if RTQA_INDEX.exists() else "hash")
    parser.add_argument("--compact", action="store_true", help="also merge into one segment and measure again")
    parser.add_argument("--batch-articles", type=int, default=BATCH_ARTICLES, help="articles per segment")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--rag-from", type=Path, help="measure the rag package in this folder")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the fresh measuring process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.questions, args.embedder)))
        return 0
    index_dir = args.dir / "index"
    args.dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {
        "build": build(index_dir, args.chunks, args.batch_articles) | {"load_average": list(os.getloadavg())}
    }
    print("build", out["build"], flush=True)
    if args.build_only:
        return 0
    measure_args = ["--questions", str(args.questions), "--embedder", args.embedder, "--measure"]
    out["as_built"] = in_fresh_process([*measure_args, str(index_dir)], args.rag_from)
    lines = ["| synthetic index | |", "|---|---|", *table("as built", out["as_built"])]
    if args.compact:
        t0 = time.perf_counter()
        compact_index(index_dir)
        out["compact"] = {"seconds": round(time.perf_counter() - t0, 1), "peak_rss_mb": peak_rss_mb()}
        out["compacted"] = in_fresh_process([*measure_args, str(index_dir)], args.rag_from)
        lines += [
            f"| compaction into one segment: time, peak RSS | {out['compact']['seconds']} s, "
            f"{out['compact']['peak_rss_mb']:,} MB |",
            *table("compacted", out["compacted"]),
        ]
    print("\n".join(lines))
    (args.dir / "result.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
