"""A question from the shell: wall time of `rag ask "..."` in a fresh process on the seed index.

Two ways of embedding the question, in the same run and interleaved so that a busy machine slows
both alike: "torch" (RAG_QUERY_EMBEDDER=torch: sentence-transformers loads the model, as every
question did before the index kept an ONNX copy of its model) and "onnx" (the default: the index's
fp32 ONNX copy, no torch). Each is run once unmeasured (disk cache), then --runs times; the report
gives the median wall time, the child processes' CPU time, the ratio torch/onnx, and whether
anything was printed on stderr (a progress bar would be). Prints one JSON line.

    python bench/ask_latency.py [--index-dir DIR] [--runs 3]

Without --index-dir the seed corpus is indexed into a temporary folder first (with the ONNX copy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "How many tents did Israel order from China?"
TARGET_S = 2.0
MODES = {"torch": {"RAG_QUERY_EMBEDDER": "torch"}, "onnx": {}}


def ask_once(index_dir: Path, question: str, extra_env: dict[str, str]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("RAG_QUERY_EMBEDDER", None)  # the default unless this mode sets it
    env.update(extra_env)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "ask", question, "--index-dir", str(index_dir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"rag ask failed: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "stderr": done.stderr, "stdout": done.stdout}


def measure(index_dir: Path, question: str, runs: int) -> dict[str, Any]:
    for env in MODES.values():  # unmeasured: the first read of the model files from disk
        ask_once(index_dir, question, env)
    samples: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for _ in range(runs):
        for mode, env in MODES.items():
            samples[mode].append(ask_once(index_dir, question, env))
    out: dict[str, Any] = {}
    for mode, rows in samples.items():
        out[mode] = {
            "median_s": round(statistics.median(r["wall"] for r in rows), 2),
            "runs_s": [round(r["wall"], 2) for r in rows],
            "cpu_median_s": round(statistics.median(r["cpu"] for r in rows), 2),
            "stderr_chars": max(len(r["stderr"]) for r in rows),  # a progress bar would show here
            "same_answer": len({r["stdout"] for r in rows}) == 1,
        }
    out["same_answer_both_ways"] = samples["torch"][0]["stdout"] == samples["onnx"][0]["stdout"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path, help="an index of the seed corpus (default: build one)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--question", default=QUESTION)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from rag.store import read_manifest

    with tempfile.TemporaryDirectory() as tmp:
        index_dir = args.index_dir
        if index_dir is None:
            from rag.index import build_index

            index_dir = Path(tmp) / "index"
            build_index([ROOT / "corpus"], index_dir)
        has_copy = bool(read_manifest(index_dir).settings.get("query_onnx"))
        load_before = os.getloadavg()
        result = measure(index_dir, args.question, args.runs)
    torch_s, onnx_s = result["torch"]["median_s"], result["onnx"]["median_s"]
    report = {
        "question": args.question,
        "runs": args.runs,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "loadavg_1min": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],  # before, after
        "index_has_onnx_copy": has_copy,
        **result,
        "speedup": round(torch_s / onnx_s, 2) if onnx_s else None,
        "target_s": TARGET_S,
        "under_target": onnx_s < TARGET_S,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
