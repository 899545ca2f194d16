"""Embedding speed: sentence-transformers (torch fp32) vs the int8 ONNX Runtime embedder (rag.onnx_embed).

Chunks come from the seed corpus and from a folder of news articles, cut exactly as `rag index`
cuts them (read_document + chunk_for_model, title prefix included). Speed: every configuration
embeds the same --speed-chunks chunks with the same batch size, back ends and thread counts
interleaved, best of --repeat runs (the CPU may be shared; `chunks_per_cpu_s` is less sensitive to
that than wall-clock chunks/s, and `cpu_seconds / seconds` far below the thread count means
contention). Quality: cosine between the float and the int8 vector of every chunk (mean, min,
1st percentile) per chunk set and of every --queries question, and how far the top 10 chunks for
each question (dense only, over the articles chunks) agree between the two. Prints one JSON line.

    python bench/embed_speed.py [--articles /tmp/rtqa/articles] [--limit 2000] [--threads 1,2]

The first run exports and quantises the model into the ONNX cache (see rag.onnx_embed); that
one-off time is reported as `onnx_prepare_seconds`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

from rag.embed import DEFAULT_MODEL, Embedder, SentenceTransformerEmbedder  # noqa: E402
from rag.errors import IngestError  # noqa: E402
from rag.index import BuildSettings, chunk_for_model, embedding_text  # noqa: E402
from rag.ingest import iter_source_files, read_document  # noqa: E402


def load_chunks(folder: Path, embedder: Embedder, limit: int) -> list[str]:
    settings = BuildSettings()
    texts: list[str] = []
    for path in sorted(iter_source_files([folder])):
        try:
            doc = read_document(path)
        except IngestError:
            continue
        texts.extend(embedding_text(c, doc, settings.title_prefix) for c in chunk_for_model(doc, settings, embedder))
        if len(texts) >= limit:
            break
    return texts[:limit]


def timed_encode(embedder: Embedder, texts: list[str], batch_size: int) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    embedder.encode(texts, batch_size=batch_size)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "chunks_per_s": round(len(texts) / wall, 2),
        "chunks_per_cpu_s": round(len(texts) / cpu, 2),
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
    }


def load_questions(path: Path) -> list[str]:
    if not path.is_file():
        return []
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError, AttributeError):
            question = json.loads(line).get("question")
            if isinstance(question, str) and question.strip():
                questions.append(question)
    return questions


def cosine_stats(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cos = np.sum(a * b, axis=1)
    return {
        "mean": round(float(cos.mean()), 4),
        "min": round(float(cos.min()), 4),
        "p01": round(float(np.percentile(cos, 1)), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus", help="seed corpus folder")
    parser.add_argument("--articles", type=Path, default=Path("/tmp/rtqa/articles"), help="news articles folder")
    parser.add_argument("--limit", type=int, default=2000, help="chunks taken from --articles")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts to measure")
    parser.add_argument("--speed-chunks", type=int, default=512, help="chunks embedded by each speed run")
    parser.add_argument("--repeat", type=int, default=2, help="speed runs per configuration; the best counts")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument(
        "--queries", type=Path, default=Path("/tmp/rtqa/queries.jsonl"), help="JSON lines with a 'question' field"
    )
    args = parser.parse_args(argv)

    import onnxruntime
    import torch

    from rag.onnx_embed import PREFIX, OnnxEmbedder

    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    torch_embedder = SentenceTransformerEmbedder(args.model)
    started = time.perf_counter()
    onnx_embedders = {n: OnnxEmbedder(PREFIX + args.model, threads=n) for n in threads}
    prepare = time.perf_counter() - started

    sets = {"seed": load_chunks(args.corpus, torch_embedder, 10**9)}
    if args.articles.is_dir() and args.limit > 0:
        sets["articles"] = load_chunks(args.articles, torch_embedder, args.limit)
    bench_set = "articles" if "articles" in sets else "seed"
    texts = sets[bench_set][: args.speed_chunks]
    tokens = [torch_embedder.count_tokens(t) + torch_embedder.special_tokens() for t in texts]

    backends: dict[str, dict[int, Embedder]] = {
        "torch_fp32": {n: torch_embedder for n in threads},
        "onnx_int8": {n: e for n, e in onnx_embedders.items()},
    }
    for by_threads in backends.values():  # warm up
        by_threads[threads[0]].encode(texts[: args.batch_size], batch_size=args.batch_size)
    speed: dict[str, dict[str, dict[str, float]]] = {name: {} for name in backends}
    for _ in range(max(1, args.repeat)):
        for n in threads:
            torch.set_num_threads(n)
            for name, by_threads in backends.items():
                run = timed_encode(by_threads[n], texts, args.batch_size)
                best = speed[name].get(str(n))
                if best is None or run["chunks_per_s"] > best["chunks_per_s"]:
                    speed[name][str(n)] = run
    speedup = {
        str(n): {
            "wall": round(speed["onnx_int8"][str(n)]["chunks_per_s"] / speed["torch_fp32"][str(n)]["chunks_per_s"], 2),
            "cpu": round(
                speed["onnx_int8"][str(n)]["chunks_per_cpu_s"] / speed["torch_fp32"][str(n)]["chunks_per_cpu_s"], 2
            ),
        }
        for n in threads
    }

    torch.set_num_threads(max(threads))
    int8_embedder = onnx_embedders[max(threads)]
    cosine: dict[str, dict[str, float]] = {}
    chunk_vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, chunk_texts in sets.items():
        float_vectors = torch_embedder.encode(chunk_texts, batch_size=args.batch_size)
        int8_vectors = int8_embedder.encode(chunk_texts, batch_size=args.batch_size)
        cosine[name] = cosine_stats(float_vectors, int8_vectors)
        chunk_vectors[name] = (float_vectors, int8_vectors)

    retrieval: dict[str, float] = {}
    questions = load_questions(args.queries)
    if questions:  # one query per call, as retrieval embeds them
        float_queries = np.vstack([torch_embedder.encode([q]) for q in questions])
        int8_queries = np.vstack([int8_embedder.encode([q]) for q in questions])
        cosine["queries"] = cosine_stats(float_queries, int8_queries)
        float_chunks, int8_chunks = chunk_vectors["articles" if "articles" in sets else "seed"]
        k = min(10, len(float_chunks))
        float_top = np.argsort(-(float_queries @ float_chunks.T), axis=1)[:, :k]
        int8_top = np.argsort(-(int8_queries @ int8_chunks.T), axis=1)[:, :k]
        overlap = [len(set(a) & set(b)) / k for a, b in zip(float_top, int8_top, strict=True)]
        retrieval = {
            f"overlap_at_{k}": round(float(np.mean(overlap)), 3),
            "top1_agreement": round(float(np.mean(float_top[:, 0] == int8_top[:, 0])), 3),
            "queries": len(questions),
        }

    result = {
        "bench": "embed_speed",
        "model": args.model,
        "onnx_model": str(onnx_embedders[threads[-1]].model_path),
        "onnx_prepare_seconds": round(prepare, 1),
        "chunks": {name: len(t) for name, t in sets.items()},
        "speed_set": bench_set,
        "speed_chunks": len(texts),
        "repeat": max(1, args.repeat),
        "tokens_per_chunk_mean": round(float(np.mean(tokens)), 1),
        "batch_size": args.batch_size,
        "speed": speed,
        "speedup": speedup,
        "cosine": cosine,
        "retrieval_int8_vs_fp32": retrieval,
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "cpu": {"count": os.cpu_count(), "machine": platform.machine(), "load1": round(os.getloadavg()[0], 2)},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
