"""The Ray build against the in-process build: chunks/s with 1 and 2 workers, and the same index.

Copies the seed corpus and N RealTime QA articles (every k-th of /tmp/rtqa/articles, so that every
outlet is in) to OUT/articles, never into the repository. Then builds a fresh index of them three
times, each in its own process as `rag index` runs: in-process, `--engine ray --workers 1` and
`--engine ray --workers 2` (a local Ray instance with that many CPUs). Checks that each Ray index
has the in-process index's chunk ids, in order, and its vectors (cosine >= 0.9999), and the same
report. Writes OUT/result.json, prints a markdown table and, last, one JSON line (bench/run.py
reads the last). Needs the scale extra: pip install -e '.[scale]'.

    python bench/ray_build.py [--rtqa /tmp/rtqa] [--articles 500] [--out /tmp/ray-bench]

build s is the build as `rag index` reports it (reading, chunking, embedding, writing; for Ray also
starting the actors and loading a model in each); wall s adds the process start, imports and, for
Ray, starting and stopping the local instance.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.store import load_index  # noqa: E402

MIN_COSINE = 0.9999
RUNS = (("local", None), ("ray", 1), ("ray", 2))


def prepare(rtqa: Path, articles: int, out: Path) -> Path:
    target = out / "articles"
    shutil.rmtree(target, ignore_errors=True)
    (target / "rtqa").mkdir(parents=True)
    shutil.copytree(ROOT / "corpus", target / "seed")
    files = sorted((rtqa / "articles").glob("*.txt"))
    for path in files[:: max(1, len(files) // articles)][:articles]:
        shutil.copy(path, target / "rtqa" / path.name)
    return target


def build(articles: Path, index_dir: Path, engine: str, workers: int | None) -> dict[str, Any]:
    shutil.rmtree(index_dir, ignore_errors=True)
    command = [sys.executable, "-m", "rag.cli", "index", str(articles), "--index-dir", str(index_dir), "--json", "-q"]
    if engine == "ray":
        command += ["--engine", "ray", "--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local Ray instance, not a cluster
    env |= {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["TOKENIZERS_PARALLELISM"] = "false"
    load_before = os.getloadavg()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    load_after = os.getloadavg()
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout)
    return {
        "engine": engine,
        "workers": workers,
        "chunks": report["chunks"],
        "build_s": round(report["seconds"], 1),
        "wall_s": round(wall, 1),
        "chunks_per_s": round(report["chunks"] / report["seconds"], 1),
        "chunks_per_s_wall": round(report["chunks"] / wall, 1),
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in load_after],
        "report": {k: v for k, v in report.items() if k not in ("seconds", "index_dir")},
    }


def compare(local_dir: Path, ray_dir: Path) -> dict[str, Any]:
    local, remote = load_index(local_dir), load_index(ray_dir)
    ids = list(local.chunk_ids())
    same_ids = list(remote.chunk_ids()) == ids
    cosine = float(np.min(np.sum(local.vectors(ids) * remote.vectors(ids), axis=1))) if same_ids else None
    sentence_cosine = 1.0
    for doc_id, doc in local.documents.items():
        offsets, vectors = local.sentences.of(doc_id, 0, len(doc.text) + 1)
        other_offsets, other = remote.sentences.of(doc_id, 0, len(doc.text) + 1)
        if not np.array_equal(offsets, other_offsets):
            sentence_cosine = float("nan")
            break
        if len(vectors):
            sentence_cosine = min(sentence_cosine, float(np.min(np.sum(vectors * other, axis=1))))
    return {
        "same_chunk_ids": same_ids,
        "min_chunk_cosine": cosine,
        "min_sentence_cosine": sentence_cosine,  # sentence vectors are stored as float16
        "ok": same_ids and cosine is not None and cosine >= MIN_COSINE,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"Ray build vs in-process build: {result['documents']} articles, {result['chunks']} chunks, "
        f"{result['cpus']} CPUs shared ({result['machine']}).",
        "",
        "| engine | workers | build s | chunks/s | wall s | chunks/s (wall) | load avg 1 min before → after "
        "| same chunk ids | min cosine |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        check = run.get("check") or {}
        cosine = check.get("min_chunk_cosine")
        lines.append(
            f"| {run['engine']} | {run['workers'] or '–'} | {run['build_s']} | {run['chunks_per_s']} | {run['wall_s']} "
            f"| {run['chunks_per_s_wall']} | {run['load_avg_before'][0]} → {run['load_avg_after'][0]} "
            f"| {check.get('same_chunk_ids', '–')} | {'–' if cosine is None else f'{cosine:.6f}'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtqa", type=Path, default=Path("/tmp/rtqa"))
    parser.add_argument("--articles", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path("/tmp/ray-bench"))
    args = parser.parse_args()
    try:
        import ray  # noqa: F401
    except ImportError:
        print("skipped: the Ray engine needs the scale extra: pip install -e '.[scale]'")
        return 0
    articles = prepare(args.rtqa, args.articles, args.out)
    runs = []
    for engine, workers in RUNS:
        name = "local" if engine == "local" else f"ray-{workers}"
        run = build(articles, args.out / f"index-{name}", engine, workers)
        if engine == "ray":
            run["check"] = compare(args.out / "index-local", args.out / f"index-{name}")
            run["check"]["same_report"] = run["report"] == runs[0]["report"]
        print(name, {k: v for k, v in run.items() if k != "report"}, flush=True)
        runs.append(run)
    result = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "documents": runs[0]["report"]["documents"],
        "chunks": runs[0]["chunks"],
        "runs": runs,
        "ok": all(r["check"]["ok"] and r["check"]["same_report"] for r in runs[1:]),
    }
    (args.out / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print()
    print(table(result))
    print()
    print(
        json.dumps(
            {k: v for k, v in result.items() if k != "runs"}
            | {"runs": [{k: v for k, v in r.items() if k != "report"} for r in runs]}
        )
    )
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
