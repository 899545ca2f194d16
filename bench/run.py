"""`make bench`: one run on this machine -> docs/benchmarks.md, docs/bench-*.png and docs/bench-results.json.

Needs the RealTime QA development set converted into /tmp/rtqa (see ../shared/bench/README.md);
its texts have no licence and stay out of the repository. Steps that lack their inputs are
skipped and say so in the report.

    python bench/run.py [--rtqa /tmp/rtqa] [--skip growth,peers,embed,ask]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))

from rag.evaluate import MODES, evaluate, read_questions  # noqa: E402
from rag.index import build_index  # noqa: E402
from rag.retrieve import Retriever, get_retriever  # noqa: E402

SEED_QA = [
    ROOT.parent / "shared" / "eval" / "seed_qa.jsonl",
    ROOT / "tests" / "data" / "seed_dev.jsonl",
    ROOT / "tests" / "data" / "seed_fresh.jsonl",  # written after the answer model was fitted
]
BASELINE = {"bm25 (README)": {"hits@5": 0.743, "hits@10": 0.854, "mrr@10": 0.585}}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def quality(rtqa: Path, results: dict[str, Any]) -> None:
    index_dir = rtqa / "index"
    queries = rtqa / "queries.jsonl"
    if not (index_dir / "manifest.json").exists():
        print(f"building the benchmark index in {index_dir} (embeds every chunk once) ...", flush=True)
        report = build_index([rtqa / "articles"], index_dir, progress=True)
        results["rtqa_build"] = report.as_dict() | {"chunks_per_s": round(report.chunks / report.seconds, 1)}
        results["rtqa_build"].pop("warnings", None)
    base = get_retriever(index_dir)
    rows = read_questions(queries)
    table: dict[str, Any] = {}
    for mode, overrides in MODES.items():
        from dataclasses import replace

        retriever = Retriever(base.stored, base.embedder, replace(base.settings, **overrides))
        report = evaluate(retriever, rows, k=10, ask=(mode == "hybrid"))
        table[mode] = report
        print(mode, {k: report.get(k) for k in ("hits@5", "hits@10", "mrr@10", "answer_match")}, flush=True)
    results["rtqa"] = {"questions": len(rows), "chunks": base.stored.size, "modes": table}


def seed_quality(results: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        build_index([ROOT / "corpus"], Path(tmp) / "index")
        retriever = get_retriever(Path(tmp) / "index")
        out = {}
        for path in SEED_QA:
            if path.exists():
                out[path.name] = evaluate(retriever, read_questions(path), k=5, ask=True)
        results["seed"] = out


def speed(rtqa: Path, results: dict[str, Any], articles: int) -> None:
    """End-to-end build throughput on a fresh index of `articles` benchmark files, then latency."""
    files = sorted((rtqa / "articles").glob("*.txt"))[:articles]
    with tempfile.TemporaryDirectory() as tmp:
        subset = Path(tmp) / "articles"
        subset.mkdir()
        for f in files:
            shutil.copy(f, subset / f.name)
        started = time.perf_counter()
        report = build_index([subset], Path(tmp) / "index")
        seconds = time.perf_counter() - started
        retriever = get_retriever(Path(tmp) / "index")
        rows = read_questions(rtqa / "queries.jsonl")[:50]
        latency = evaluate(retriever, rows, k=10, ask=True)
    results["speed"] = {
        "articles": len(files),
        "chunks": report.chunks,
        "build_s": round(seconds, 1),
        "build_chunks_per_s": round(report.chunks / seconds, 1),
        "retrieve_ms": latency["retrieve_ms"],
        "ask_ms": latency["ask_ms"],
        "max_rss_mb": round(rss_mb()),
    }
    print("speed", results["speed"], flush=True)


def run_script(args: list[str], timeout: float) -> dict[str, Any] | None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    for line in reversed(done.stdout.splitlines()):  # the last line that is a JSON object
        if line.startswith("{"):
            try:
                parsed: dict[str, Any] = json.loads(line)
                return parsed
            except ValueError:
                continue
    return None


def json_report(args: list[str], timeout: float) -> dict[str, Any] | None:
    """Run a bench script that takes `--json FILE` and return what it wrote (None if it wrote nothing)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        run_script([*args, "--json", str(report)], timeout)
        return json.loads(report.read_text(encoding="utf-8")) if report.exists() else None


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.0f}"
    return str(value)


def plot_quality(results: dict[str, Any]) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    modes = results.get("rtqa", {}).get("modes", {})
    peers = results.get("peers", {}) or {}
    rows = {m: r for m, r in modes.items()}
    if isinstance(peers.get("quality"), dict):
        rows["llamaindex"] = peers["quality"]
    if not rows:
        return None
    metrics = ["hits@5", "hits@10", "mrr@10"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(rows)
    for i, (name, r) in enumerate(rows.items()):
        ax.bar([j + i * width for j in range(len(metrics))], [r.get(m) or 0 for m in metrics], width, label=name)
    ax.axhline(0.854, color="grey", linestyle="--", linewidth=0.8, label="BM25 hits@10 baseline 0.854")
    ax.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(metrics))], metrics)
    ax.set_ylim(0, 1)
    ax.set_title("RealTime QA dev (article level)")
    ax.legend(fontsize=7, loc="lower right")
    path = DOCS / "bench-quality.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path.name


def scale_markdown(results: dict[str, Any]) -> list[str]:
    """Issue 12: memory, adding one article, the 1M-chunk index."""
    memory, append, million = (results.get(k) or {} for k in ("memory", "append", "million"))
    if not (memory.get("rss_mb") or append.get("rtqa_store") or million or results.get("ray")):
        return []
    out = ["## Scale", "", "| | result |", "|---|---|"]
    if memory.get("rss_mb"):
        out.append(
            f"| resident memory, {memory['chunks']}-chunk index loaded and 20 questions answered (bench/memory.py) "
            f"| {memory['final']['rss_mb']} MB (peak {memory['peak_rss_mb']} MB; torch imported: "
            f"{memory['torch_imported']}) |"
        )
    for key, label in (("rtqa_store", "adding one article"), ("synthetic_store", "adding one article, 10x larger")):
        r = append.get(key)
        if r:
            out.append(
                f"| {label} ({r['chunks']} chunks; bench/append.py) | {r['total_s']} s "
                f"(open {r['open_s']} s, commit {r['commit_s']} s) |"
            )
    for key, label in (("as_built", "as built"), ("compacted", "after `--compact`")):
        r = million.get(key)
        if r and r.get("search"):
            out.append(
                f"| synthetic {r['chunks']}-chunk index, {label} ({len(r['segments'])} segments): retrieve p50 / p95, "
                f"peak RSS (bench/million.py) | {r['search']['p50_ms']} / {r['search']['p95_ms']} ms, "
                f"{r['peak_rss_mb']} MB |"
            )
    ray = results.get("ray") or {}
    for run in ray.get("runs") or []:
        engine = "in-process" if run["engine"] == "local" else f"Ray, {run['workers']} worker(s)"
        out.append(
            f"| build of {ray['chunks']} chunks ({ray['documents']} articles), {engine} (bench/ray_build.py, "
            f"{ray['date']}, load average {run['load_avg_before'][0]}) | {run['chunks_per_s']} chunks/s "
            f"({run['build_s']} s) |"
        )
    if ray.get("runs"):
        out.append(f"| Ray build: the same chunk ids and vectors as the in-process one | {ray.get('ok')} |")
    return [*out, ""]


def ranking_markdown(ranking: dict[str, Any] | None, mode: str) -> list[str]:
    """Issue 10's table: the ranking settings chosen by week-fold CV (bench/tune_ranking.py)."""
    if not ranking or "joint_cross_validated_held_out" not in ranking:
        return []
    ms = ranking["retrieve_ms_warm"]
    out = [
        f"## Ranking, week-fold cross-validation ({ranking['questions']} questions, {ranking['weeks']} weeks, {mode})",
        "",
        "bench/tune_ranking.py: the article focus prior, the distinct-articles rule and BM25's b chosen on the other "
        "weeks and scored on each held-out week (the shipped defaults are one of the points searched); the other "
        f"rows need no fitting. Retrieve p50 / p95 in a warm process on {ms['chunks']} chunks: "
        f"{ms['shipped_defaults']['p50']} / {ms['shipped_defaults']['p95']} ms "
        f"(previous defaults {ms['previous_defaults']['p50']} / {ms['previous_defaults']['p95']} ms).",
        "",
        "| | hits@5 | hits@10 | MRR@10 |",
        "|---|---|---|---|",
    ]
    for label, key in (
        ("ranking settings chosen by CV, held-out weeks", "joint_cross_validated_held_out"),
        ("shipped defaults", "shipped_defaults"),
        ("previous defaults (no focus prior, no distinct articles, b 0.75)", "previous_defaults"),
        ("BM25 alone, same chunks (bm25s defaults: k1 1.5, b 0.75)", "bm25"),
        ("BM25 alone, b 0.6", "bm25_b0.6"),
    ):
        r = ranking[key]
        out.append(f"| {label} | {fmt(r['hits@5'])} | {fmt(r['hits@10'])} | {fmt(r['mrr@10'])} |")
    out += ["", "One idea at a time on top of the shipped defaults (held-out weeks; shipped value a choice):", ""]
    out += ["| idea | hits@5 | hits@10 | MRR@10 |", "|---|---|---|---|"]
    for name, family in ranking["one_idea_at_a_time"].items():
        r = family["held_out"]
        out.append(f"| {name} | {fmt(r['hits@5'])} | {fmt(r['hits@10'])} | {fmt(r['mrr@10'])} |")
    return [*out, ""]


def write_markdown(results: dict[str, Any]) -> None:
    out = [
        "# Benchmarks",
        "",
        f"`make bench` (bench/run.py) on {results['machine']}, {results['date']}. Steps can be re-run alone "
        "(`python bench/run.py --update --skip ...`); the others keep their figures from the previous run, "
        "as docs/bench-results.json holds them. The Ray build figures come from one run of bench/ray_build.py "
        "(`--ray-json`).",
        "",
    ]
    out += [
        "Re-run: convert the RealTime QA dev weeks into /tmp/rtqa (../shared/bench/README.md), then `make bench`.",
        "",
    ]
    rtqa = results.get("rtqa")
    if rtqa:
        out += [f"## Quality: RealTime QA dev ({rtqa['questions']} questions, {rtqa['chunks']} chunks)", ""]
        out += [
            "Article level: a hit is a top-k passage from a gold article (matched by URL). Same chunks, same model.",
            "",
        ]
        out += [
            "| retriever | hits@5 | hits@10 | MRR@10 | answer quotes the right choice | retrieve p50 / p95 ms "
            "| ask p50 / p95 ms |",
            "|---|---|---|---|---|---|---|",
        ]
        labels = {
            "hybrid": "this project (fusion + best-sentence stage, the default)",
            "learned": 'the learned ranking (RetrieveSettings(ranker="learned"))',
            "rrf": "reciprocal-rank fusion alone",
            "bm25": "BM25 alone",
            "dense": "dense alone (FAISS)",
        }
        for mode, r in rtqa["modes"].items():
            rm, am = r.get("retrieve_ms") or {}, r.get("ask_ms") or {}
            out.append(
                f"| {labels.get(mode, mode)} | {fmt(r.get('hits@5'))} | {fmt(r.get('hits@10'))} "
                f"| {fmt(r.get('mrr@10'))} | {fmt(r.get('answer_match'))} "
                f"| {fmt(rm.get('p50'))} / {fmt(rm.get('p95'))} "
                f"| {fmt(am.get('p50'))} / {fmt(am.get('p95'))} |"
            )
        base = results.get("answer_baseline")
        if base:
            out.append(
                f"| best 120-word BM25 window, as the answer | – | – | – | {fmt(base.get('answer_match'))} | – | – |"
            )
        peers = results.get("peers") or {}
        if isinstance(peers.get("quality"), dict):
            q = peers["quality"]
            out.append(
                f"| LlamaIndex VectorStoreIndex | {fmt(q.get('hits@5'))} | {fmt(q.get('hits@10'))} "
                f"| {fmt(q.get('mrr@10'))} | – |"
            )
        b = BASELINE["bm25 (README)"]
        out.append(
            f"| BM25, whole 22-week set (../shared/bench/README.md) | {b['hits@5']} | {b['hits@10']} "
            f"| {b['mrr@10']} | – |"
        )
        out += ["", "![quality](bench-quality.png)", ""]
    cv = results.get("retrieval_cv")
    if cv and "held_out" in cv:
        out += [
            f"## Retrieval, week-fold cross-validation ({cv['questions']} questions, {len(cv['weeks'])} weeks)",
            "",
            "Each week is held out in turn: the learned ranking is fitted on the other weeks and scored on it "
            "(bench/tune_retrieval.py). Only held-out figures; the fixed rankers need no fitting.",
            "",
            "| ranker | hits@5 | hits@10 | MRR@10 |",
            "|---|---|---|---|",
            *(
                f"| {name} | {fmt(r['hits@5'])} | {fmt(r['hits@10'])} | {fmt(r['mrr@10'])} |"
                for name, r in cv["held_out"].items()
            ),
            "",
            f"Shipped (rag/retrieval_model.json, refitted on all weeks): {cv.get('chosen', '–')}.",
            "",
        ]
    answers = results.get("answers_cv")
    if answers:
        out += [
            "## Answers: the sentence model, held out",
            "",
            "bench/train_answer.py: fitted on tests/data/seed_train.jsonl and the RealTime QA weeks other than the "
            "one scored; the seed files below were not used for fitting or choosing the bars. This is a refit made "
            "by the bench run on today's retrieval: the shipped rag/answer_model.json is not replaced by it (the "
            "seed section further down scores the shipped one).",
            "",
            "| questions | exact | precision | first | abstain | quotes hold the answer |",
            "|---|---|---|---|---|---|",
            *(
                f"| {name} | {fmt(r['exact'])} | {fmt(r['precision'])} | {fmt(r['first'])} | {fmt(r['abstain'])} "
                f"| {fmt(r['match'])} |"
                for name, r in answers.items()
                if name.startswith(("held_out", "rtqa_held"))
            ),
            "",
        ]
    for key, mode in (("ranking", "no as_of"), ("ranking_as_of", "as_of = the question's date")):
        out += ranking_markdown(results.get(key), mode)
    feedback = results.get("feedback")
    if feedback and "feedback_cross_validated_held_out" in feedback:
        out += [
            f"## Retrieval with feedback, week-fold cross-validation ({feedback['questions']} questions, "
            f"{feedback['weeks']} weeks, no as_of)",
            "",
            "bench/tune_feedback.py: the pseudo-relevance feedback settings (weight, chunks, terms) chosen on the "
            "other weeks and scored on each held-out week; the fixed rankings need no fitting.",
            "",
            "| | hits@5 | hits@10 | MRR@10 |",
            "|---|---|---|---|",
        ]
        for label, key in (
            ("feedback settings chosen by CV, held-out weeks", "feedback_cross_validated_held_out"),
            ("shipped defaults (feedback 1.0, 10 chunks, 10 terms)", "shipped_defaults"),
            ("fusion + sentence stage, no feedback (the previous default)", "fusion_without_feedback"),
            ("BM25 alone, same chunks", "bm25"),
        ):
            r = feedback[key]
            out.append(f"| {label} | {fmt(r['hits@5'])} | {fmt(r['hits@10'])} | {fmt(r['mrr@10'])} |")
        out.append("")
    dates = results.get("dates")
    if dates and "cross_validated_held_out" in dates:
        out += [
            f"## Dates: RealTime QA asked as of each question's day ({dates['questions']} questions)",
            "",
            "`as_of` = the question's `question_date`: nothing published later is used, its time words are read "
            "against that day, recency is a prior (bench/tune_dates.py). BM25 gets the same dates: the same windows "
            "and priors, dense ranking and sentence stage off. Article level, as above.",
            "",
            "| | hits@5 | hits@10 | MRR@10 | answer quotes the right choice |",
            "|---|---|---|---|---|",
        ]
        base_as_of = results.get("answer_baseline_as_of") or {}
        base_window = results.get("answer_baseline_window") or {}
        for label, key, answer in (
            ("date settings chosen by week-fold CV, held-out weeks", "cross_validated_held_out", None),
            ("this project, shipped defaults, as_of", "defaults_as_of", dates.get("answer_match_as_of")),
            ("BM25, same dates", "bm25_as_of", None),
            ("this project, no as_of", "defaults_no_as_of", dates.get("answer_match_no_as_of")),
            ("BM25, no as_of", "bm25_no_as_of", None),
        ):
            r = dates[key]
            out.append(f"| {label} | {fmt(r['hits@5'])} | {fmt(r['hits@10'])} | {fmt(r['mrr@10'])} | {fmt(answer)} |")
        out += [
            f"| best 120-word BM25 window, articles up to as_of | – | – | – | {fmt(base_as_of.get('answer_match'))} |",
            f"| ... and inside the question's time window | – | – | – | {fmt(base_window.get('answer_match'))} |",
            "",
            "Chosen per held-out week: "
            + "; ".join(
                f"{week[-8:]}: " + ", ".join(f"{k} {v:g}" for k, v in c.items())
                for week, c in dates.get("chosen_per_week", {}).items()
            ),
            "",
        ]
    out += scale_markdown(results)
    seed = results.get("seed")
    if seed:
        out += [
            "## Quality: the seed articles",
            "",
            "| QA file | questions | recall@5 | exact | precision | first | faithful | scoped | abstain | ask p50 ms |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in seed.items():
            out.append(
                f"| {name} | {r.get('questions')} | {fmt(r.get('recall@5'))} | {fmt(r.get('exact'))} "
                f"| {fmt(r.get('precision'))} | {fmt(r.get('first'))} | {fmt(r.get('faithful'))} "
                f"| {fmt(r.get('scoped'))} | {fmt(r.get('abstain'))} | {fmt((r.get('ask_ms') or {}).get('p50'))} |"
            )
        out.append("")
    sp = results.get("speed")
    if sp:
        out += [
            "## Speed",
            "",
            f"A fresh index of {sp['articles']} benchmark articles ({sp['chunks']} chunks), "
            "end to end, then 50 benchmark questions.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| build, end to end | {sp['build_chunks_per_s']} chunks/s ({sp['build_s']} s) |",
            f"| retrieve p50 / p95 | {sp['retrieve_ms']['p50']} / {sp['retrieve_ms']['p95']} ms |",
            f"| ask p50 / p95 | {sp['ask_ms']['p50']} / {sp['ask_ms']['p95']} ms |",
            f"| peak resident memory of the bench process | {sp['max_rss_mb']} MB |",
            "",
        ]
    ask = results.get("ask_latency")
    if ask and "onnx" in ask:
        out += [
            "## A question from the shell",
            "",
            f'`rag ask "{ask["question"]}"` in a fresh process on the seed index, median of {ask["runs"]} '
            f"(load average {ask['loadavg_1min'][0]} at the start; {results['machine']}).",
            "",
            "| question embedded by | median wall | runs | CPU (median) |",
            "|---|---|---|---|",
            *(
                f"| {label} | {ask[mode]['median_s']} s | {', '.join(map(str, ask[mode]['runs_s']))} "
                f"| {ask[mode]['cpu_median_s']} s |"
                for mode, label in (
                    ("torch", "the model via sentence-transformers (RAG_QUERY_EMBEDDER=torch, as before)"),
                    ("onnx", "the index's ONNX copy of its model (default)"),
                )
            ),
            "",
            f"{ask['speedup']}x faster; under {ask['target_s']} s: {'yes' if ask['under_target'] else 'no'}.",
            "",
        ]
    emb = results.get("embed")
    if emb:
        out += ["## Embedding step alone", "", "```json", json.dumps(emb, indent=1), "```", ""]
    peers = results.get("peers")
    if peers:
        out += [
            "## Against LlamaIndex (same model, same chunks, one run)",
            "",
            "```json",
            json.dumps(peers, indent=1),
            "```",
            "",
        ]
    load = results.get("load")
    if load:
        out += ["## Load: the web app under concurrent clients", "", "```json", json.dumps(load, indent=1), "```", ""]
    growth = results.get("growth")
    if growth:
        out += [
            "## Growth: flat against HNSW, 10 thousand to 1 million chunks (synthetic vectors)",
            "",
            "```json",
            json.dumps(growth, indent=1)[:6000],
            "```",
            "",
        ]
        if (DOCS / "bench-growth.png").exists():
            out += ["![growth](bench-growth.png)", ""]
    (DOCS / "benchmarks.md").write_text("\n".join(out), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rtqa", type=Path, default=Path("/tmp/rtqa"))
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated: quality,seed,cv,ranking,feedback,dates,speed,ask,embed,peers,scale,ray,growth",
    )
    parser.add_argument("--speed-articles", type=int, default=150)
    parser.add_argument("--update", action="store_true", help="start from docs/bench-results.json, redo what runs")
    parser.add_argument(
        "--ray-json", type=Path, help="include this saved output of bench/ray_build.py instead of running it"
    )
    parser.add_argument(
        "--peers-json", type=Path, help="include this saved output of bench/peer_llamaindex.py instead of running it"
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    DOCS.mkdir(exist_ok=True)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    saved = DOCS / "bench-results.json"
    if args.update and saved.exists():
        results = json.loads(saved.read_text(encoding="utf-8")) | results
    have_rtqa = (args.rtqa / "queries.jsonl").exists()
    if not have_rtqa:
        print(f"no benchmark data in {args.rtqa}: quality and speed on RealTime QA skipped", flush=True)
    if have_rtqa and "quality" not in skip:
        quality(args.rtqa, results)
    if "seed" not in skip:
        seed_quality(results)
    py = sys.executable
    if have_rtqa and "cv" not in skip:
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "cv.json"
            run_script([py, "bench/tune_retrieval.py", "--rtqa", str(args.rtqa), "--json", str(report)], 3600)
            if report.exists():
                results["retrieval_cv"] = json.loads(report.read_text(encoding="utf-8"))
                shipped = json.loads((ROOT / "rag" / "retrieval_model.json").read_text(encoding="utf-8"))
                results["retrieval_cv"]["chosen"] = shipped.get("chosen")
            report = Path(tmp) / "answers.json"
            model = Path(tmp) / "answer_model.json"  # the shipped model is not replaced by a bench run
            run_script(
                [py, "bench/train_answer.py", "--rtqa", str(args.rtqa), "--out", str(model), "--report", str(report)],
                3600,
            )
            if report.exists():
                results["answers_cv"] = json.loads(report.read_text(encoding="utf-8"))
        results["answer_baseline"] = run_script([py, "bench/answer_baseline.py", "--rtqa", str(args.rtqa)], 1800)
    rtqa_args = ["--rtqa", str(args.rtqa)]
    if have_rtqa and "ranking" not in skip:
        for key, extra in (("ranking", []), ("ranking_as_of", ["--as-of"])):
            if (found := json_report([py, "bench/tune_ranking.py", *rtqa_args, *extra], 3600)) is not None:
                results[key] = found
    if (
        have_rtqa
        and "feedback" not in skip
        and (found := json_report([py, "bench/tune_feedback.py", *rtqa_args], 3600)) is not None
    ):
        results["feedback"] = found
    if have_rtqa and "dates" not in skip:
        if (found := json_report([py, "bench/tune_dates.py", *rtqa_args], 3600)) is not None:
            results["dates"] = found
        for key, extra in (("answer_baseline_as_of", ["--as-of"]), ("answer_baseline_window", ["--as-of", "--window"])):
            results[key] = run_script([py, "bench/answer_baseline.py", "--rtqa", str(args.rtqa), *extra], 1800)
    if have_rtqa and "speed" not in skip:
        speed(args.rtqa, results, args.speed_articles)
    if "ask" not in skip:
        results["ask_latency"] = run_script([py, "bench/ask_latency.py"], 1800)
    if "embed" not in skip and (ROOT / "bench" / "embed_speed.py").exists():
        results["embed"] = run_script([py, "bench/embed_speed.py", "--articles", str(args.rtqa / "articles")], 1800)
    li_python = Path(os.environ.get("LLAMAINDEX_PYTHON", "/tmp/li-venv/bin/python"))
    if args.peers_json and args.peers_json.exists():
        results["peers"] = json.loads(args.peers_json.read_text(encoding="utf-8"))
    elif "peers" not in skip and (ROOT / "bench" / "peer_llamaindex.py").exists() and li_python.exists():
        results["peers"] = run_script([str(li_python), "bench/peer_llamaindex.py"], 3600)
    if "load" not in skip and (ROOT / "bench" / "load.py").exists():
        results["load"] = run_script([py, "bench/load.py"], 900)
    if "scale" not in skip:
        # Issue 12's figures: memory on the RealTime QA index, adding one article (that index and one
        # 10x larger), a synthetic 1M-chunk index (/tmp/million, built on the first run: long).
        for key, command, output in (
            ("memory", ["bench/memory.py"], Path("/tmp/memory/result.json")),
            ("append", ["bench/append.py", "--rtqa", str(args.rtqa)], Path("/tmp/append-bench/result.json")),
            ("million", ["bench/million.py"], Path("/tmp/million/result.json")),
        ):
            failed = run_script([py, *command], 14400)
            results[key] = json.loads(output.read_text()) if output.exists() else failed
    if args.ray_json and args.ray_json.exists():
        results["ray"] = json.loads(args.ray_json.read_text(encoding="utf-8"))
    elif "ray" not in skip and (ROOT / "bench" / "ray_build.py").exists():
        failed = run_script([py, "bench/ray_build.py"], 14400)  # needs the scale extra; long on 2 cores
        ray_json = Path("/tmp/ray-bench/result.json")
        results["ray"] = json.loads(ray_json.read_text(encoding="utf-8")) if ray_json.exists() else failed
    if "growth" not in skip and (ROOT / "bench" / "growth.py").exists():
        results["growth"] = run_script(
            [py, "bench/growth.py", "--out", str(DOCS / "bench-growth.json"), "--plot", str(DOCS / "bench-growth.png")],
            3600,
        )
        growth_json = DOCS / "bench-growth.json"
        if growth_json.exists():
            results["growth"] = json.loads(growth_json.read_text())
    plot_quality(results)
    (DOCS / "bench-results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    write_markdown(results)
    print(f"wrote {DOCS / 'benchmarks.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
