"""Append: the time to add one article does not grow with the archive; retrieve on a 1M-chunk store.

  real       N real articles (/tmp/rtqa/articles) indexed with the hash embedder (the store's cost
             is what grows with the archive; embedding one article costs the same at any size), then
             one more article added through `build_index` (reads every source file, as `rag index`
             does) and through the store alone (`apply`: one new segment, the manifest swapped).
  synthetic  a store 10x larger, built directly through the store interface (random unit vectors,
             generated text, no embedding), and one article added to it through the store.
  million    (--million) a synthetic store of 1M chunks in one HNSW segment: `Retriever.search`
             p50/p95 with the learned ranking, and the process's peak RSS.

    python bench/append.py [--articles /tmp/rtqa/articles] [--n 500] [--million]

Prints one JSON line (bench/run.py reads the last).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.embed import HashEmbedder  # noqa: E402
from rag.index import HNSW_MIN_CHUNKS, build_index  # noqa: E402
from rag.retrieve import Retriever  # noqa: E402
from rag.segments import SegmentStore  # noqa: E402
from rag.store import NewDocuments, SentenceTable, load_index  # noqa: E402
from rag.types import Chunk, Document  # noqa: E402

DIM = 384
CHUNKS_PER_ARTICLE = 15
SENTENCES_PER_CHUNK = 4
REPEATS = 5


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Generator:
    """Articles of generated text (Zipf-distributed words) with random unit vectors."""

    def __init__(self, seed: int, vocabulary: int = 20_000) -> None:
        self.rng = np.random.default_rng(seed)
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
        self.words = ["".join(self.rng.choice(letters, size=self.rng.integers(4, 10))) for _ in range(vocabulary)]
        ranks = np.arange(1, vocabulary + 1)
        self.cdf = np.cumsum(1 / ranks) / (1 / ranks).sum()
        self.serial = seed * 10**9  # distinct doc ids per generator

    def sentence(self) -> str:
        n = int(self.rng.integers(8, 20))
        picks = np.minimum(np.searchsorted(self.cdf, self.rng.random(n)), len(self.words) - 1)
        return " ".join(self.words[i] for i in picks).capitalize() + "."

    def batch(self, articles: int) -> NewDocuments:
        docs: list[Document] = []
        chunks: list[Chunk] = []
        spans: dict[str, tuple[int, np.ndarray]] = {}
        n_sentences = 0
        for _ in range(articles):
            self.serial += 1
            doc_id = f"{self.serial:020x}"
            pieces: list[str] = []
            offsets: list[tuple[int, int]] = []
            doc_chunks: list[tuple[int, int]] = []
            position = 0
            for _ in range(CHUNKS_PER_ARTICLE):
                start = position
                for _ in range(SENTENCES_PER_CHUNK):
                    s = self.sentence()
                    offsets.append((position, position + len(s)))
                    pieces.append(s)
                    position += len(s) + 1
                doc_chunks.append((start, position - 1))
            text = " ".join(pieces)
            outlet = f"Outlet {self.serial % 40}"
            docs.append(Document(doc_id, f"/synthetic/{doc_id}.txt", text, outlet, title=f"Article {self.serial}"))
            for i, (a, b) in enumerate(doc_chunks):
                chunks.append(Chunk(doc_id, i, a, b, text[a:b]))
            spans[doc_id] = (n_sentences, np.array(offsets, np.int64))
            n_sentences += len(offsets)
        vectors = self.unit(len(chunks))
        by_id = {d.doc_id: d for d in docs}
        lexical = [f"{by_id[c.doc_id].title}\n{c.text}" for c in chunks]
        table = SentenceTable(spans, self.unit(n_sentences).astype(np.float16))
        return NewDocuments(docs, chunks, vectors, lexical, table)

    def unit(self, n: int) -> np.ndarray:
        v = self.rng.standard_normal((n, DIM), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v


def time_store_add(index_dir: Path, gen: Generator) -> dict[str, float]:
    """Seconds to open the store and add one article through it (one new segment, manifest swapped).
    Each repeat adds one more article; the median is reported."""
    opened, applied = [], []
    for _ in range(REPEATS):
        one = gen.batch(1)
        t0 = time.perf_counter()
        store = load_index(index_dir, verify=False)
        t1 = time.perf_counter()
        m = store.manifest
        store.apply(one, (), settings=m.settings, stats=m.stats, hnsw_min_chunks=HNSW_MIN_CHUNKS, merge=False)
        t2 = time.perf_counter()
        opened.append(t1 - t0)
        applied.append(t2 - t1)
    return {
        "open_s": round(float(np.median(opened)), 3),
        "add_s": round(float(np.median(applied)), 3),
        "total_s": round(float(np.median(np.add(opened, applied))), 3),
    }


def real(articles: Path, n: int, work: Path) -> dict[str, Any]:
    corpus = work / "corpus"
    corpus.mkdir()
    files = sorted(articles.glob("*.txt"))
    n = min(n, len(files) - 4 * REPEATS)  # keep some articles back to add
    for f in files[:n]:
        shutil.copy(f, corpus / f.name)
    index_dir = work / "real-index"
    embedder = HashEmbedder(dimension=DIM)
    t0 = time.perf_counter()
    report = build_index([corpus], index_dir, embedder=embedder)
    built = time.perf_counter() - t0
    seconds = []
    for f in files[n:]:
        shutil.copy(f, corpus / f.name)
        t0 = time.perf_counter()
        added = build_index([corpus], index_dir, embedder=embedder)
        if added.added:  # not a copy of an article already there
            seconds.append(time.perf_counter() - t0)
        if len(seconds) == REPEATS:
            break
    store_only = time_store_add(index_dir, Generator(7))
    return {
        "articles": report.documents,
        "chunks": report.chunks,
        "build_s": round(built, 1),
        "add_one_build_index_s": round(float(np.median(seconds)), 3),
        "add_one_store": store_only,
    }


def synthetic(chunks: int, work: Path, name: str, hnsw_min_chunks: int = 10**12) -> tuple[Path, dict[str, Any]]:
    index_dir = work / name
    gen = Generator(11)
    store = SegmentStore.empty(index_dir, f"hash:{DIM}", DIM)
    articles = max(1, chunks // CHUNKS_PER_ARTICLE)
    t0 = time.perf_counter()
    # Segments of 15,000 articles (225k chunks: HNSW above the threshold), as successive builds
    # leave them; merging them all at once would hold the whole archive's text in memory.
    batch = 15_000
    for first in range(0, articles, batch):
        store.apply(
            gen.batch(min(batch, articles - first)),
            (),
            settings={},
            stats={},
            hnsw_min_chunks=hnsw_min_chunks,
            merge=False,
        )
        store = load_index(index_dir, verify=False)
    built = time.perf_counter() - t0
    info = {"articles": len(store.manifest.documents), "chunks": store.size, "segments": len(store.manifest.segments)}
    return index_dir, info | {"build_s": round(built, 1)}


def million(work: Path, chunks: int) -> dict[str, Any]:
    index_dir, info = synthetic(chunks, work, "million", hnsw_min_chunks=HNSW_MIN_CHUNKS)
    store = load_index(index_dir, verify=False)
    retriever = Retriever(store, HashEmbedder(dimension=DIM))
    gen = Generator(5)
    questions = [gen.sentence() for _ in range(60)]
    retriever.search(questions[0], k=5)  # warm-up
    ms = []
    for q in questions[1:]:
        t0 = time.perf_counter()
        retriever.search(q, k=5)
        ms.append((time.perf_counter() - t0) * 1000)
    return info | {
        "faiss": store.manifest.faiss_type,
        "retrieve_p50_ms": round(float(np.percentile(ms, 50)), 1),
        "retrieve_p95_ms": round(float(np.percentile(ms, 95)), 1),
        "peak_rss_mb": round(rss_mb()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=Path, default=Path("/tmp/rtqa/articles"))
    parser.add_argument("--n", type=int, default=500, help="real articles in the base index")
    parser.add_argument("--million", action="store_true", help="also the 1M-chunk retrieve latency")
    parser.add_argument("--million-chunks", type=int, default=1_000_000)
    parser.add_argument("--only-million", action="store_true", help="skip the append timings")
    args = parser.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rag-append-") as tmp:
        work = Path(tmp)
        if args.only_million:
            pass
        elif args.articles.is_dir():
            out["real"] = real(args.articles, args.n, work)
            print("real", out["real"], flush=True)
            target = 10 * out["real"]["chunks"]
        if "real" not in out:
            if not args.only_million:
                print(f"no articles in {args.articles}: the real-article step is skipped", flush=True)
            target = 10 * args.n * CHUNKS_PER_ARTICLE
        for label, size in () if args.only_million else (("synthetic_base", target // 10), ("synthetic_10x", target)):
            index_dir, info = synthetic(size, work, label)
            out[label] = info | {"add_one_store": time_store_add(index_dir, Generator(13))}
            print(label, out[label], flush=True)
            shutil.rmtree(index_dir)
        if args.million:
            out["million"] = million(work, args.million_chunks)
            print("million", out["million"], flush=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
