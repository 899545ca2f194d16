"""Growth: dense retrieval latency, memory and recall from 10 thousand to 1 million chunks.

Synthetic vectors stand in for chunk embeddings (384 dimensions, L2-normalised): a Gaussian mixture
in a space whose variance falls off as a power law over a random basis, plus a shared mean direction,
with parameters fitted to all-MiniLM-L6-v2 vectors of news chunks (see `--calibrate` and
`CALIBRATION` below), so neighbourhoods look like text-embedding neighbourhoods, not like uniform
noise (which is much harder for graph indexes). Queries come from the same distribution.

For each size (10k, 30k, 100k, 300k, 1M by default) it measures
  * IndexFlatIP (what rag.index builds below HNSW_MIN_CHUNKS): exact;
  * IndexHNSWFlat(M=32, efConstruction=80, inner product), as rag.index builds it, at several efSearch;
  * optionally (--ivf) IndexIVFFlat with a fixed nlist, at several nprobe;
build time, single-query latency p50/p95/mean (k=60, one query per call, as the app searches), index
bytes (faiss.serialize_index) and the process RSS, and for the approximate indexes recall@10 and
recall@60 against the exact top lists.

Both indexes grow incrementally (10k, then +20k, ...), which is how HNSW and flat indexes are
built anyway, so the build time at each size is the cumulative time to add that many vectors.
If the HNSW build would overrun --hnsw-budget seconds, larger sizes are skipped and the JSON says so
(with an extrapolated build time).

    python bench/growth.py --out growth.json [--plot growth.png] [--sizes 10000,30000,...] [--ivf]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
# Fitted with `--calibrate` to 4,000 all-MiniLM-L6-v2 vectors of news chunks (255 articles of /tmp/rtqa/articles,
# title prefix, ~16 chunks per article) and the 103 RealTimeQA questions of /tmp/rtqa/queries.jsonl.
CALIBRATION = {"alpha": 0.8, "topic_spread": 0.4, "chunk_spread": 0.6, "mean_norm": 0.5, "query_spread": 2.0}
CHUNKS_PER_ARTICLE = 15.7
LATENCY_MS_LIMIT = 20.0  # "too slow" for one dense search, in the crossover summary


# --- data -------------------------------------------------------------------------------------------------------------


class Mixture:
    """Clustered, anisotropic unit vectors shaped like chunk embeddings of news articles.

    Latent space: variance (i+1)^-alpha on axis i (normalised to total 1), seen through a random
    orthogonal basis and shifted by a shared mean direction (text embeddings are anisotropic).
    Topics (Pareto-sized) have centres; an article sits near its topic centre (topic_spread);
    its ~16 chunks sit near the article (chunk_spread), stored consecutively as an index stores
    them. A query is a noisy copy (query_spread) of one of the first `query_pool` chunks, so every
    size holds the chunk each query is about, plus ever more distractors.
    """

    def __init__(
        self, dim: int = DIM, topics: int = 2000, seed: int = 0, params: dict[str, float] | None = None
    ) -> None:
        self.params = {**CALIBRATION, **(params or {})}
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.scale = ((np.arange(dim) + 1.0) ** (-self.params["alpha"] / 2)).astype(np.float32)
        self.scale /= np.sqrt(np.sum(self.scale**2))
        self.basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype(np.float32)
        self.centres = (rng.standard_normal((topics, dim)) * self.scale).astype(np.float32)
        weights = rng.pareto(1.5, topics) + 1.0  # a few big stories, many small ones
        self.weights = weights / weights.sum()
        mean = rng.standard_normal(dim).astype(np.float32)
        self.mean = (mean / np.linalg.norm(mean) * self.params["mean_norm"]).astype(np.float32)
        self.pool: list[np.ndarray] = []  # chunk latents of the first block, for queries

    def _noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.standard_normal((n, self.dim), dtype=np.float32) * self.scale

    def _embed(self, latent: np.ndarray) -> np.ndarray:
        x = latent @ self.basis.T + self.mean
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float32, copy=False)

    def chunks(self, n: int, rng: np.random.Generator, query_pool: int = 10_000, block: int = 100_000) -> np.ndarray:
        out = np.empty((n, self.dim), dtype=np.float32)
        done = 0
        while done < n:
            m = min(block, n - done)
            sizes = rng.poisson(CHUNKS_PER_ARTICLE - 1, size=m // 4 + 1) + 1
            sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), m)) + 1]
            topics = rng.choice(len(self.centres), size=len(sizes), p=self.weights)
            articles = self.centres[topics] + self.params["topic_spread"] * self._noise(rng, len(sizes))
            latent = np.repeat(articles, sizes, axis=0)[:m] + self.params["chunk_spread"] * self._noise(rng, m)
            out[done : done + m] = self._embed(latent)
            if done < query_pool:
                self.pool.append(latent[: query_pool - done])
            done += m
        return out

    def queries(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.queries_with_source(n, rng)[0]

    def queries_with_source(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Queries and the row of the chunk each one was made from."""
        pool = np.vstack(self.pool)
        source = rng.integers(0, len(pool), size=n)
        return self._embed(pool[source] + self.params["query_spread"] * self._noise(rng, n)), source


def shape_stats(vectors: np.ndarray, queries: np.ndarray | None = None) -> dict[str, float]:
    """What the calibration matches: mean pairwise and nearest-neighbour cosine, PCA spectrum, query-to-chunk cosine."""
    x = vectors.astype(np.float64)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    nn = sims.max(axis=1)
    np.fill_diagonal(sims, np.nan)
    eig = np.linalg.eigvalsh(np.cov((x - x.mean(0)).T))[::-1]
    eig = eig / eig.sum()
    stats = {
        "n": len(x),
        "mean_cos": round(float(np.nanmean(sims)), 4),
        "nn1_cos": round(float(nn.mean()), 4),
        "nn1_cos_p10": round(float(np.percentile(nn, 10)), 4),
        "pca_top10_share": round(float(eig[:10].sum()), 4),
        "pca_top50_share": round(float(eig[:50].sum()), 4),
    }
    if queries is not None and len(x) >= 60:
        top = -np.sort(-(queries.astype(np.float64) @ x.T), axis=1)
        stats.update(
            {f"query_top{k}_cos": round(float(top[:, k - 1].mean()), 4) for k in (1, 10, 60)},
        )
    return stats


# --- measurement ------------------------------------------------------------------------------------------------------


def index_bytes(index: Any) -> int:
    import faiss

    return int(faiss.serialize_index(index).nbytes)


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def latency(index: Any, queries: np.ndarray, k: int, threads: int) -> tuple[dict[str, float], np.ndarray]:
    """One query per search call, as the app does, on `threads` OpenMP threads; returns ms stats and the ids."""
    import faiss

    build_threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        return _latency(index, queries, k)
    finally:
        faiss.omp_set_num_threads(build_threads)


def _latency(index: Any, queries: np.ndarray, k: int) -> tuple[dict[str, float], np.ndarray]:
    times = np.empty(len(queries))
    ids = np.empty((len(queries), k), dtype=np.int64)
    index.search(queries[:1], k)  # warm
    for i in range(len(queries)):
        started = time.perf_counter()
        _, found = index.search(queries[i : i + 1], k)
        times[i] = time.perf_counter() - started
        ids[i] = found[0]
    ms = times * 1000
    stats = {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }
    return stats, ids


def hit_rate(found: np.ndarray, source: np.ndarray) -> float:
    """Share of queries whose source chunk is among the results (the chunk the question is about)."""
    return round(float(np.mean([s in f for f, s in zip(found, source, strict=True)])), 4)


def recall(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    hits = [len(set(f[:k].tolist()) & set(e[:k].tolist())) for f, e in zip(found, exact, strict=True)]
    return round(float(np.mean(hits)) / k, 4)


def crossover(rows: list[dict[str, Any]], limit_ms: float) -> dict[str, Any]:
    """Where flat search stops being fast enough, and where HNSW starts to pay."""
    flat = [(r["size"], r["flat"]["p50_ms"]) for r in rows]
    over = next((n for n, ms in flat if ms > limit_ms), None)
    estimate = None
    if len(flat) >= 2:  # flat cost is linear in n: fit ms = a + b n and solve for the limit
        sizes, ms = np.array([n for n, _ in flat], dtype=float), np.array([m for _, m in flat])
        b, a = np.polyfit(sizes, ms, 1)
        if b > 0:
            estimate = int((limit_ms - a) / b)
    faster = None
    for r in rows:
        hnsw = r.get("hnsw")
        if hnsw and hnsw["search"] and min(s["p50_ms"] for s in hnsw["search"]) < r["flat"]["p50_ms"] / 2:
            faster = r["size"]
            break
    return {
        "limit_ms": limit_ms,
        "flat_p50_first_size_over_limit": over,
        "flat_p50_limit_at_size_estimate": estimate,
        "hnsw_p50_under_half_of_flat_from_size": faster,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import faiss

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    default_threads = faiss.omp_get_max_threads()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    ef_search = [int(e) for e in args.ef_search.split(",")]
    nprobe = [int(p) for p in args.nprobe.split(",")]
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    mixture = Mixture(topics=args.topics, seed=args.seed)
    data = mixture.chunks(sizes[-1], rng, query_pool=sizes[0])
    queries, source = mixture.queries_with_source(args.queries, rng)
    generate_seconds = time.perf_counter() - started
    rss0 = rss_bytes()

    flat = faiss.IndexFlatIP(DIM)
    hnsw = faiss.IndexHNSWFlat(DIM, args.m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = args.ef_construction
    ivf: Any = None
    ivf_train_seconds = 0.0
    if args.ivf:
        quantizer = faiss.IndexFlatIP(DIM)
        ivf = faiss.IndexIVFFlat(quantizer, DIM, args.nlist, faiss.METRIC_INNER_PRODUCT)
        t = time.perf_counter()
        ivf.train(data[: min(len(data), args.nlist * 64)])
        ivf_train_seconds = time.perf_counter() - t

    rows: list[dict[str, Any]] = []
    flat_build = hnsw_build = ivf_build = 0.0
    hnsw_stopped: dict[str, Any] | None = None
    done = 0
    for size in sizes:
        chunk = data[done:size]
        row: dict[str, Any] = {"size": size}

        t = time.perf_counter()
        flat.add(chunk)
        flat_build += time.perf_counter() - t
        exact = flat.search(queries, max(args.k, 10))[1]  # batched: the ground truth
        stats, _ = latency(flat, queries[: args.flat_queries], args.k, args.search_threads)
        row["flat"] = {
            "build_s": round(flat_build, 3),
            **stats,
            "index_bytes": index_bytes(flat),
            f"source_hit@{args.k}": hit_rate(exact[:, : args.k], source),
        }
        if default_threads != args.search_threads:  # FAISS's own default: parallel scan, needs idle cores
            stats, _ = latency(flat, queries[: args.flat_queries // 3], args.k, default_threads)
            row["flat"][f"threads_{default_threads}"] = stats

        if hnsw_stopped is None and not args.no_hnsw:
            rate = hnsw_build / max(done, 1)  # seconds per vector so far
            predicted = hnsw_build + rate * (size - done) * (np.log(size) / np.log(max(done, 2)))
            if done and predicted > args.hnsw_budget:
                hnsw_stopped = {"from_size": size, "predicted_build_s": round(float(predicted), 1)}
            else:
                t = time.perf_counter()
                hnsw.add(chunk)
                hnsw_build += time.perf_counter() - t
                search = []
                for ef in ef_search:
                    hnsw.hnsw.efSearch = ef
                    stats, found = latency(hnsw, queries, args.k, args.search_threads)
                    search.append(
                        {
                            "ef_search": ef,
                            **stats,
                            "recall@10": recall(found, exact, 10),
                            f"recall@{args.k}": recall(found, exact, args.k),
                            f"source_hit@{args.k}": hit_rate(found, source),
                        }
                    )
                row["hnsw"] = {"build_s": round(hnsw_build, 3), "index_bytes": index_bytes(hnsw), "search": search}

        if ivf is not None:
            t = time.perf_counter()
            ivf.add(chunk)
            ivf_build += time.perf_counter() - t
            search = []
            for p in nprobe:
                ivf.nprobe = p
                stats, found = latency(ivf, queries, args.k, args.search_threads)
                search.append(
                    {
                        "nprobe": p,
                        **stats,
                        "recall@10": recall(found, exact, 10),
                        f"recall@{args.k}": recall(found, exact, args.k),
                        f"source_hit@{args.k}": hit_rate(found, source),
                    }
                )
            row["ivf"] = {
                "build_s": round(ivf_build + ivf_train_seconds, 3),
                "train_s": round(ivf_train_seconds, 3),
                "index_bytes": index_bytes(ivf),
                "search": search,
            }
        row["rss_bytes"] = rss_bytes()
        row["rss_delta_bytes"] = row["rss_bytes"] - rss0
        rows.append(row)
        done = size
        print(
            json.dumps({"progress": row["size"], "elapsed_s": round(time.perf_counter() - started, 1)}), file=sys.stderr
        )

    return {
        "bench": "growth",
        "dim": DIM,
        "k": args.k,
        "queries": args.queries,
        "flat_queries": min(args.flat_queries, args.queries),
        "data": {
            "kind": "topic/article/chunk Gaussian mixture, power-law spectrum, shared mean (see bench/growth.py)",
            "topics": args.topics,
            "chunks_per_article": CHUNKS_PER_ARTICLE,
            **mixture.params,
            "shape": shape_stats(data[:4000], queries),
            "generate_s": round(generate_seconds, 1),
        },
        "hnsw_params": {"M": args.m, "efConstruction": args.ef_construction, "efSearch": ef_search},
        "ivf_params": {"nlist": args.nlist, "nprobe": nprobe} if args.ivf else None,
        "hnsw_skipped": hnsw_stopped,
        "faiss_threads": {"build": default_threads, "search": args.search_threads},
        "rows": rows,
        "crossover": crossover(rows, args.latency_limit_ms),
        "total_s": round(time.perf_counter() - started, 1),
        "versions": {"faiss": faiss.__version__, "numpy": np.__version__},
        "cpu": {"count": os.cpu_count(), "machine": platform.machine(), "load1": round(os.getloadavg()[0], 2)},
    }


# --- plot -------------------------------------------------------------------------------------------------------------


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    sizes = [r["size"] for r in rows]
    fig, (ax_lat, ax_mem, ax_rec) = plt.subplots(1, 3, figsize=(16, 4.8))

    ax_lat.plot(sizes, [r["flat"]["p50_ms"] for r in rows], "o-", color="black", label="flat p50")
    ax_lat.plot(sizes, [r["flat"]["p95_ms"] for r in rows], "o--", color="black", alpha=0.5, label="flat p95")
    other = [key for key in rows[0]["flat"] if key.startswith("threads_")]
    for key in other:
        label = f"flat p50, {key.split('_')[1]} threads"
        ax_lat.plot(sizes, [r["flat"][key]["p50_ms"] for r in rows], "o:", color="grey", label=label)
    for name, key, color in (("hnsw", "ef_search", "tab:blue"), ("ivf", "nprobe", "tab:green")):
        have = [r for r in rows if r.get(name)]
        if not have:
            continue
        for j, setting in enumerate(have[0][name]["search"]):
            shade = 0.4 + 0.6 * (j + 1) / len(have[0][name]["search"])
            ax_lat.plot(
                [r["size"] for r in have],
                [r[name]["search"][j]["p50_ms"] for r in have],
                "s-",
                color=color,
                alpha=shade,
                label=f"{name} {key}={setting[key]} p50",
            )
            ax_rec.plot(
                [r["size"] for r in have],
                [r[name]["search"][j]["recall@10"] for r in have],
                "s-",
                color=color,
                alpha=shade,
                label=f"{name} {key}={setting[key]}",
            )
    ax_lat.axhline(
        result["crossover"]["limit_ms"], color="red", lw=0.8, ls=":", label=f"{result['crossover']['limit_ms']:g} ms"
    )
    ax_lat.set(xscale="log", yscale="log", xlabel="chunks", ylabel=f"ms per query (k={result['k']})", title="latency")
    ax_lat.legend(fontsize=6, loc="upper left", ncol=2)

    ax_mem.plot(sizes, [r["flat"]["index_bytes"] / 2**20 for r in rows], "o-", color="black", label="flat")
    for name, color in (("hnsw", "tab:blue"), ("ivf", "tab:green")):
        have = [r for r in rows if r.get(name)]
        if have:
            ax_mem.plot(
                [r["size"] for r in have], [r[name]["index_bytes"] / 2**20 for r in have], "s-", color=color, label=name
            )
    ax_mem.set(xscale="log", yscale="log", xlabel="chunks", ylabel="MiB (serialized index)", title="memory")
    ax_mem.legend(fontsize=7)

    ax_rec.set(xscale="log", xlabel="chunks", ylabel="recall@10 vs flat", title="recall", ylim=(None, 1.0))
    ax_rec.legend(fontsize=7)
    threads = result["faiss_threads"]
    fig.suptitle(
        f"FAISS growth, {result['dim']}-d synthetic embeddings; build on {threads['build']} threads, "
        f"search on {threads['search']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- calibration ------------------------------------------------------------------------------------------------------


def calibrate(vectors_path: Path, queries_path: Path | None) -> dict[str, Any]:
    """Compare the mixture with real vectors (.npy of chunk embeddings, and of questions) over a small grid."""
    real = np.load(vectors_path).astype(np.float32)
    real_queries = np.load(queries_path).astype(np.float32) if queries_path else None
    target = shape_stats(real, real_queries)
    keys = ["mean_cos", "nn1_cos", "nn1_cos_p10", "pca_top10_share", "pca_top50_share"]
    if real_queries is not None:
        keys += ["query_top1_cos", "query_top10_cos", "query_top60_cos"]
    fits: list[tuple[float, dict[str, Any]]] = []
    for alpha, topic_spread, chunk_spread, mean_norm in itertools.product(
        (0.8, 1.0), (0.4, 0.6), (0.6, 0.8, 1.0), (0.5,)
    ):
        params = {"alpha": alpha, "topic_spread": topic_spread, "chunk_spread": chunk_spread, "mean_norm": mean_norm}
        mixture = Mixture(seed=1, params=params)
        rng = np.random.default_rng(1)
        vectors = mixture.chunks(len(real), rng)
        for query_spread in (1.0, 1.3, 1.6, 2.0, 2.5):
            mixture.params["query_spread"] = query_spread
            stats = shape_stats(vectors, mixture.queries(300, rng))
            error = sum(abs(stats[k] - target[k]) / max(abs(target[k]), 1e-3) for k in keys if k in stats)
            fits.append((error, {**params, "query_spread": query_spread, **stats}))
    fits.sort(key=lambda item: item[0])
    return {"real": target, "best": [dict(fit, error=round(err, 3)) for err, fit in fits[:5]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write the JSON result here (else stdout)")
    parser.add_argument("--plot", nargs="?", const="", default=None, help="also write a PNG (default: --out with .png)")
    parser.add_argument("--sizes", default="10000,30000,100000,300000,1000000")
    parser.add_argument("--queries", type=int, default=300, help="queries for the approximate indexes and recall")
    parser.add_argument("--flat-queries", type=int, default=100, help="queries timed on the flat index")
    parser.add_argument("--k", type=int, default=60)
    parser.add_argument("--m", type=int, default=32, help="HNSW M")
    parser.add_argument("--ef-construction", type=int, default=80)
    parser.add_argument("--ef-search", default="64,128,256,512")
    parser.add_argument("--hnsw-budget", type=float, default=420.0, help="seconds of HNSW building before skipping")
    parser.add_argument("--ivf", action="store_true", help="also IndexIVFFlat")
    parser.add_argument("--no-hnsw", action="store_true", help="skip HNSW (e.g. to time IVF alone)")
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", default="8,16,32")
    parser.add_argument("--topics", type=int, default=2000, help="topic clusters of the synthetic data")
    parser.add_argument("--threads", type=int, default=0, help="FAISS OpenMP threads to build (0: FAISS default)")
    parser.add_argument(
        "--search-threads", type=int, default=1, help="FAISS OpenMP threads for the timed single-query searches"
    )
    parser.add_argument("--latency-limit-ms", type=float, default=LATENCY_MS_LIMIT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibrate", type=Path, help="print how the mixture compares with real vectors (.npy), exit")
    parser.add_argument("--calibrate-queries", type=Path, help="with --calibrate: real question vectors (.npy)")
    args = parser.parse_args(argv)

    if args.calibrate:
        print(json.dumps(calibrate(args.calibrate, args.calibrate_queries)))
        return 0
    result = run(args)
    text = json.dumps(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    else:
        print(text)
    if args.plot is not None:
        target = Path(args.plot) if args.plot else (args.out or Path("growth.json")).with_suffix(".png")
        plot(result, target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
