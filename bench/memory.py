"""Resident memory of a fresh process that loads the RealTime QA index and answers questions.

In a fresh process: `import rag`, the index loaded as the app and CLI load it (rag.api.retriever_for:
checksums verified, the index's ONNX copy of its model as the query embedder), then --questions
questions from queries.jsonl answered with `rag.ask`. RSS at each stage (psutil), the peak
(ru_maxrss), how much of the final RSS is anonymous memory and how much is pages of mapped files
(reclaimable: the kernel drops them under pressure), the largest mappings, and whether torch was
imported.

    python bench/memory.py [--index /tmp/rtqa/index] [--queries /tmp/rtqa/queries.jsonl] [--questions 20]

Prints a markdown table and writes JSON to /tmp/memory/result.json. Target: under 800 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB = 800


def mb(n: float) -> int:
    return round(n / 2**20)


def mappings(top: int = 12) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """(/proc/self/smaps_rollup totals in MB, the `top` largest mappings by Rss, grouped by file)."""
    rollup: dict[str, int] = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            rollup[key] = round(int(value.split()[0]) / 1024)
    by_name: dict[str, int] = defaultdict(int)
    name = ""
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split(maxsplit=5)
            name = parts[5] if len(parts) > 5 else "[anonymous]"
        elif line.startswith("Rss:"):
            by_name[name] += int(line.split()[1]) * 1024
    largest = sorted(by_name.items(), key=lambda kv: -kv[1])[:top]
    return rollup, [(n, mb(v)) for n, v in largest]


def measure(index_dir: Path, queries: Path, n: int) -> dict[str, Any]:
    import psutil

    process = psutil.Process()
    stages: dict[str, int] = {"start": mb(process.memory_info().rss)}
    import rag

    stages["import rag"] = mb(process.memory_info().rss)
    from rag.api import retriever_for

    t0 = time.perf_counter()
    retriever = retriever_for(index_dir)
    load_s = time.perf_counter() - t0
    stages["index loaded"] = mb(process.memory_info().rss)
    questions = [json.loads(line)["question"] for line in queries.read_text(encoding="utf-8").splitlines()[:n]]
    seconds = []
    for i, question in enumerate(questions):
        t0 = time.perf_counter()
        rag.ask(question, index_dir=index_dir)
        seconds.append(time.perf_counter() - t0)
        if i == 0:
            stages["first answer"] = mb(process.memory_info().rss)
    stages[f"{len(questions)} answers"] = mb(process.memory_info().rss)
    rollup, largest = mappings()
    return {
        "index": str(index_dir),
        "chunks": retriever.stored.size,
        "articles": len(retriever.stored.manifest.documents),
        "embedder": type(retriever.embedder).__name__,
        "torch_imported": "torch" in sys.modules,
        "sentence_transformers_imported": "sentence_transformers" in sys.modules,
        "load_s": round(load_s, 2),
        "answer_median_s": round(sorted(seconds)[len(seconds) // 2], 2),
        "rss_mb": stages,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "final": {
            "rss_mb": rollup.get("Rss"),
            "anonymous_mb": rollup.get("Anonymous"),
            "file_backed_mb": (rollup.get("Rss") or 0) - (rollup.get("Anonymous") or 0),
            "uss_mb": mb(process.memory_full_info().uss),
        },
        "largest_mappings_mb": largest,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=Path("/tmp/rtqa/index"))
    parser.add_argument("--queries", type=Path, default=Path("/tmp/rtqa/queries.jsonl"))
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("/tmp/memory"))
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the fresh process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.index, args.queries, args.questions)))
        return 0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    command = [sys.executable, __file__, "--measure", "--index", str(args.index), "--queries", str(args.queries)]
    done = subprocess.run(
        [*command, "--questions", str(args.questions)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return 1
    r = json.loads(done.stdout.strip().splitlines()[-1])
    final = r["final"]
    peak = r["peak_rss_mb"]
    lines = [
        f"| {r['chunks']:,} chunks, {r['articles']:,} articles; query embedder {r['embedder']}"
        f"{', torch imported' if r['torch_imported'] else ', no torch'} | RSS |",
        "|---|---|",
        *(f"| {stage} | {value:,} MB |" for stage, value in r["rss_mb"].items()),
        f"| peak | {peak:,} MB ({'under' if peak < TARGET_MB else 'over'} the {TARGET_MB} MB target) |",
        f"| at the end: anonymous / mapped files | {final['anonymous_mb']:,} / {final['file_backed_mb']:,} MB |",
        f"| load / median answer | {r['load_s']} s / {r['answer_median_s']} s |",
        f"| load average | {' '.join(map(str, r['load_average']))} |",
    ]
    print("\n".join(lines))
    print("largest mappings (MB):", r["largest_mappings_mb"])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.json").write_text(json.dumps(r, indent=1), encoding="utf-8")
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
