"""Append: the time to add one article does not grow with the archive.

  rtqa       a copy of the RealTime QA index (/tmp/rtqa/index, 43.5k chunks; copied to --work, the
             original is never written), and one more article added
               * through the store alone (`load_index` + `apply`: one new segment, the manifest
                 swapped), a generated article of 20 chunks with its vectors ready;
               * through `build_index`, as `rag index` adds a new file: every source file read again
                 (that part grows with the archive, by design: the build diffs the folder against the
                 index), the new article chunked and embedded by the real model.
  synthetic  a store about 10x larger (--synthetic-chunks, default 10x the copy), written through the
             store from bench/synthetic.py's articles in segments of 250k chunks (HNSW above
             HNSW_MIN_CHUNKS, as successive builds leave them) and kept in --work for the next run;
             one article added through the store alone, to a hard-linked copy (segments are never
             written in place, the manifest is replaced by a rename: the base stays as it was).

Each time is the median of --repeats additions, each one more article. Reported per step: opening
the store, the commit (apply), their sum, and the manifest's size after.

    python bench/append.py [--rtqa /tmp/rtqa] [--work /tmp/append-bench] [--repeats 5] [--no-build-index]

Prints a markdown table and writes JSON to WORK/result.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CODE = os.environ.get("RAG_BENCH_CODE", str(ROOT))  # where `rag` comes from
sys.path[:0] = [CODE, str(ROOT / "bench")]

from synthetic import DIM, Generator  # noqa: E402

from rag.index import HNSW_MIN_CHUNKS, build_index  # noqa: E402
from rag.segments import SegmentStore  # noqa: E402
from rag.store import MANIFEST, load_index, read_manifest  # noqa: E402

SEGMENT_ARTICLES = 12_500  # x 20 chunks: 250k chunks per segment, as in bench/million.py
CHUNKS_PER_ARTICLE = 20


def time_store_add(index_dir: Path, gen: Generator, repeats: int) -> dict[str, Any]:
    """Seconds to open the store and add one article through it (one new segment, manifest swapped).
    Each repeat adds one more article; medians are reported."""
    opened, applied = [], []
    for i in range(repeats + 1):  # the first is not counted: page cache, and an older format's manifest rewritten
        one = gen.batch(1)
        t0 = time.perf_counter()
        store = load_index(index_dir, verify=False)
        t1 = time.perf_counter()
        m = store.manifest
        store.apply(one, (), settings=m.settings, stats=m.stats, hnsw_min_chunks=HNSW_MIN_CHUNKS, merge=False)
        t2 = time.perf_counter()
        if i:
            opened.append(t1 - t0)
            applied.append(t2 - t1)
        del store
    return {
        "chunks": load_index(index_dir, verify=False).size,
        "open_s": round(float(np.median(opened)), 3),
        "commit_s": round(float(np.median(applied)), 3),
        "total_s": round(float(np.median(np.add(opened, applied))), 3),
        "manifest_bytes": (index_dir / MANIFEST).stat().st_size,
    }


def new_article(articles: Path, n: int, out_dir: Path) -> Path:
    """A real article made new: an existing one with a line added (another content hash)."""
    source = sorted(articles.glob("*.txt"))[n]
    text = source.read_text(encoding="utf-8")
    head, sep, body = text.partition("\n\n")
    path = out_dir / f"appended-{n}-{source.name}"
    path.write_text(f"{head}{sep}Update {n}: this story was added by bench/append.py.\n\n{body}", encoding="utf-8")
    return path


def time_build_index(index_dir: Path, articles: Path, work: Path, repeats: int) -> dict[str, Any]:
    """Seconds for `build_index` to add one new article file, the sources being the index's own
    (every file read again) plus a folder of new articles; the model is loaded before timing."""
    from rag.embed import load_embedder

    manifest = read_manifest(index_dir)
    embedder = load_embedder(manifest.model)
    new_dir = work / "new-articles"
    shutil.rmtree(new_dir, ignore_errors=True)
    new_dir.mkdir(parents=True)
    sources = [*(manifest.settings.get("sources") or [str(articles)]), str(new_dir)]
    seconds, embedded = [], []
    for i in range(repeats):
        path = new_article(articles, i, new_dir)
        t0 = time.perf_counter()
        report = build_index(sources, index_dir, embedder=embedder)
        seconds.append(time.perf_counter() - t0)
        if report.added != (str(path),) or report.removed or report.updated:
            what = {k: report.as_dict()[k][:3] for k in ("added", "removed", "updated")}
            raise SystemExit(f"expected one added article, got {what}")
        embedded.append(report.embedded + report.sentences_embedded)
    return {
        "chunks": load_index(index_dir, verify=False).size,
        "source_files": len(list(articles.glob("*.txt"))),
        "total_s": round(float(np.median(seconds)), 3),
        "embedded_per_article": int(np.median(embedded)),
        "manifest_bytes": (index_dir / MANIFEST).stat().st_size,
    }


def synthetic_base(index_dir: Path, chunks: int) -> dict[str, Any]:
    """The synthetic index (reused when there with the same size; a killed build resumes)."""
    articles = max(1, chunks // CHUNKS_PER_ARTICLE)
    done = len(read_manifest(index_dir).documents) if (index_dir / MANIFEST).exists() else 0
    if done >= articles:
        return {"reused": True}
    if done % SEGMENT_ARTICLES:
        raise SystemExit(f"{index_dir} is not a base this script wrote: remove it")
    store = load_index(index_dir, verify=False) if done else SegmentStore.empty(index_dir, "synthetic-random", DIM)
    t0 = time.perf_counter()
    for b, first in enumerate(range(done, articles, SEGMENT_ARTICLES), start=done // SEGMENT_ARTICLES):
        batch = Generator(seed=2000 + b, chunks_per_article=CHUNKS_PER_ARTICLE).batch(
            min(SEGMENT_ARTICLES, articles - first)
        )
        store.apply(batch, (), settings={}, stats={}, hnsw_min_chunks=HNSW_MIN_CHUNKS, merge=False)
        del batch
        store = load_index(index_dir, verify=False)
        print(f"  synthetic base: {store.size:,} chunks, load {os.getloadavg()[0]:.2f}", flush=True)
    return {"reused": False, "build_s": round(time.perf_counter() - t0, 1)}


def hard_link_copy(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(["cp", "-al", str(source), str(target)], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rtqa", type=Path, default=Path("/tmp/rtqa"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/append-bench"))
    parser.add_argument("--synthetic-chunks", type=int, help="default: 10x the chunks of the RealTime QA index")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-build-index", action="store_true", help="skip the build_index timing (loads the model)")
    parser.add_argument("--million", action="store_true", help="also run bench/million.py (its JSON under 'million')")
    parser.add_argument("--articles", type=Path, help=argparse.SUPPRESS)  # older command lines: RTQA/articles
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)  # older command lines: ignored
    args = parser.parse_args()
    if args.articles:
        args.rtqa = args.articles.parent
    args.work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    source_index = args.rtqa / "index"
    copy = args.work / "rtqa-index"
    base_chunks = 43_568
    if (source_index / MANIFEST).exists():
        for step in ("store", "build_index"):  # each on a fresh copy: the original is never written
            if step == "build_index" and args.no_build_index:
                continue
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(source_index, copy)
            base_chunks = load_index(copy, verify=False).size
            if step == "store":
                r = time_store_add(copy, Generator(seed=7), args.repeats)
            else:
                r = time_build_index(copy, args.rtqa / "articles", args.work, args.repeats)
            out[f"rtqa_{step}"] = r | {"load_average": os.getloadavg()[0]}
            print(f"rtqa, {step}", out[f"rtqa_{step}"], flush=True)
        shutil.rmtree(copy)
    else:
        print(f"no index in {source_index}: the RealTime QA steps are skipped", flush=True)
    base = args.work / "synthetic-base"
    out["synthetic_base"] = synthetic_base(base, args.synthetic_chunks or 10 * base_chunks)
    work_copy = args.work / "synthetic-work"
    hard_link_copy(base, work_copy)
    out["synthetic_store"] = time_store_add(work_copy, Generator(seed=13), args.repeats) | {
        "segments": len(read_manifest(base).segments),
        "load_average": os.getloadavg()[0],
    }
    print("synthetic, store", out["synthetic_store"], flush=True)
    shutil.rmtree(work_copy)

    lines = [
        "| add one article | chunks | open | commit | total | manifest | load avg |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in (("rtqa_store", "RealTime QA copy, store"), ("synthetic_store", "synthetic ~10x, store")):
        r = out.get(key)
        if r:
            lines.append(
                f"| {label} | {r['chunks']:,} | {r['open_s']} s | {r['commit_s']} s | {r['total_s']} s "
                f"| {r['manifest_bytes']:,} B | {r['load_average']:.2f} |"
            )
    r = out.get("rtqa_build_index")
    if r:
        lines.append(
            f"| RealTime QA copy, `build_index` ({r['source_files']:,} files read, "
            f"{r['embedded_per_article']} texts embedded) | {r['chunks']:,} | | | {r['total_s']} s "
            f"| {r['manifest_bytes']:,} B | {r['load_average']:.2f} |"
        )
    if "rtqa_store" in out:
        ratio = out["synthetic_store"]["total_s"] / max(out["rtqa_store"]["total_s"], 1e-9)
        out["growth_ratio"] = round(ratio, 2)
        scale = out["synthetic_store"]["chunks"] / out["rtqa_store"]["chunks"]
        lines.append(
            f"\nstore path, synthetic against RealTime QA copy: {ratio:.2f}x the time for {scale:.1f}x the chunks"
        )
    print("\n".join(lines))
    if args.million:
        done = subprocess.run([sys.executable, str(ROOT / "bench" / "million.py")], capture_output=True, text=True)
        print(done.stdout[-4000:], done.stderr[-2000:], flush=True)
        if done.returncode == 0:
            out["million"] = json.loads(done.stdout.strip().splitlines()[-1])
    (args.work / "result.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
