"""Score retrieval and answers on a question file: the same code serves `rag eval`, tests and benchmarks.

Two formats are read, told apart line by line:
  * QA lines (../shared/eval/seed_qa.jsonl): id, question, history, gold_outlets, answer_groups, type;
    scored as ../shared/eval/score.py does: recall@k, answer, exact, precision (the share of the
    quotes given for answerable questions that hold an answer string, pooled), first (the first
    quote holds one), scoped, abstain;
  * benchmark lines (../shared/bench/README.md): id, question, answer, choices, gold: [{source, title, url}].
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rag.answer import AnswerSettings, answer_question
from rag.errors import RagError
from rag.outlets import outlet_key
from rag.retrieve import Retriever, RetrieveSettings, get_retriever
from rag.timeexpr import parse_date
from rag.types import Answer, Passage

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.translate(_QUOTES)).strip().lower()


def read_questions(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RagError(f"cannot read {path}: {exc.strerror or exc}") from exc
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise RagError(f"{path}:{number}: not a JSON line") from exc
        if "question" not in row or not ("answer_groups" in row or "gold" in row):
            raise RagError(f"{path}:{number}: needs question and answer_groups (QA) or gold (benchmark)")
        rows.append(row)
    return rows


def _groups_found(groups: list[list[str]], items: list[tuple[str, bool]]) -> float:
    if not groups:
        return 1.0
    hit = sum(1 for group in groups if any(any(norm(a) in t for a in group) for t, ok in items if ok))
    return hit / len(groups)


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"p50": round(statistics.median(ordered), 1), "p95": round(p95, 1)}


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


@dataclass
class _Tally:
    values: dict[str, list[float]]

    def add(self, key: str, value: float) -> None:
        self.values.setdefault(key, []).append(value)


def _quote_is_verbatim(retriever: Retriever, answer: Answer) -> list[bool]:
    """Each quote is its source document's text at its offsets, and names that document's outlet."""
    docs = retriever.stored.documents
    checks = []
    for quote in answer.quotes:
        doc = docs.get(quote.doc_id)
        checks.append(
            doc is not None
            and doc.text[quote.start : quote.end] == quote.text
            and outlet_key(doc.outlet) == outlet_key(quote.outlet)
        )
    return checks


def evaluate(
    retriever: Retriever,
    rows: Sequence[dict[str, Any]],
    k: int = 5,
    ask: bool = True,
    answer_settings: AnswerSettings | None = None,
    progress: Callable[[int], None] | None = None,
    as_of: bool = False,
) -> dict[str, Any]:
    """Metrics over `rows` (see module docstring), overall and by question type. With `as_of`, each
    question is asked on its `question_date` (benchmark lines) or `as_of` (QA lines), when it has one."""
    tally = _Tally({})
    by_type: dict[str, _Tally] = {}
    retrieve_ms: list[float] = []
    ask_ms: list[float] = []
    verbatim: list[bool] = []
    if ask and rows:
        answer_question(retriever, str(rows[0]["question"]), settings=answer_settings)  # warm-up
    for i, row in enumerate(rows):
        kind = str(row.get("type") or row.get("question_type") or "all")
        sub = by_type.setdefault(kind, _Tally({}))
        history = tuple(row.get("history") or ())
        depth = max(k, 10) if "gold" in row else k
        day = (
            parse_date(row.get("question_date") or row["as_of"])
            if as_of and (row.get("question_date") or row.get("as_of"))
            else None
        )
        started = time.perf_counter()
        outlets = row.get("outlets")  # the outlets ticked for this line, as score.py passes them
        q = retriever.analyse(row["question"], history, outlets, as_of=day)
        passages = retriever.search_query(q, k=depth)
        retrieve_ms.append((time.perf_counter() - started) * 1000)
        answer = None
        if ask:
            started = time.perf_counter()
            q = retriever.analyse(row["question"], history, outlets, as_of=day)
            answer = answer_question(retriever, q, settings=answer_settings)
            ask_ms.append((time.perf_counter() - started) * 1000)
            verbatim.extend(_quote_is_verbatim(retriever, answer))
        if "gold" in row:
            _score_benchmark(row, passages, answer, tally, sub)
        else:
            _score_qa(row, passages[:k], answer, tally, sub, k)
        if progress:
            progress(i)
    report: dict[str, Any] = {"questions": len(rows)}
    report.update(_summary(tally))
    if ask:
        report["faithful"] = round(sum(verbatim) / len(verbatim), 3) if verbatim else None
        report["quotes"] = len(verbatim)
    report["retrieve_ms"] = _percentiles(retrieve_ms)
    if ask:
        report["ask_ms"] = _percentiles(ask_ms)
    if len(by_type) > 1:
        report["by_type"] = {kind: _summary(sub) for kind, sub in sorted(by_type.items())}
    return report


_HELD, _QUOTED = "_quotes_holding_an_answer", "_quotes_given"


def _summary(tally: _Tally) -> dict[str, Any]:
    """Means per question, and precision pooled over the quotes (as score.py counts it)."""
    out = {key: _mean(values) for key, values in tally.values.items() if not key.startswith("_")}
    quoted = sum(tally.values.get(_QUOTED, []))
    if _QUOTED in tally.values:
        out["precision"] = round(sum(tally.values[_HELD]) / quoted, 3) if quoted else None
    return out


def _score_qa(
    row: dict[str, Any], passages: list[Passage], answer: Answer | None, tally: _Tally, sub: _Tally, k: int
) -> None:
    gold = {outlet_key(o) for o in row.get("gold_outlets") or []}
    groups = row.get("answer_groups") or []
    answerable = bool(groups)
    if answer is not None:
        value = float(answer.abstained == (not answerable))
        tally.add("abstain", value)
        sub.add("abstain", value)
    if not answerable:
        return
    items = [(norm(p.text), outlet_key(p.outlet) in gold) for p in passages]
    recall = _groups_found(groups, items)
    for t in (tally, sub):
        t.add(f"recall@{k}", recall)
    if answer is None:
        return
    quoted = [(norm(q.text), outlet_key(q.outlet) in gold) for q in answer.quotes]
    found = _groups_found(groups, quoted)
    strings = [norm(a) for group in groups for a in group]
    holds = [any(a in text for a in strings) for text, _ in quoted]
    for t in (tally, sub):
        t.add("answer", found)
        t.add("exact", float(found == 1.0))
        t.add("first", float(bool(holds) and holds[0]))
        t.add(_HELD, float(sum(holds)))
        t.add(_QUOTED, float(len(holds)))
    if row.get("type") == "outlet-scoped":
        scoped = float(bool(answer.quotes) and all(outlet_key(q.outlet) in gold for q in answer.quotes))
        tally.add("scoped", scoped)
        sub.add("scoped", scoped)


def _score_benchmark(
    row: dict[str, Any], passages: list[Passage], answer: Answer | None, tally: _Tally, sub: _Tally
) -> None:
    gold_urls = {g.get("url") for g in row.get("gold") or [] if g.get("url")}
    rank = next((i for i, p in enumerate(passages[:10]) if p.url in gold_urls), None)
    for t in (tally, sub):
        t.add("hits@5", float(rank is not None and rank < 5))
        t.add("hits@10", float(rank is not None))
        t.add("mrr@10", 1.0 / (rank + 1) if rank is not None else 0.0)
    if answer is not None and row.get("answer"):
        target = norm(str(row["answer"]).strip("“”\"' "))
        quoted = " ".join(norm(q.text) for q in answer.quotes)
        for t in (tally, sub):
            t.add("answer_match", float(bool(target) and target in quoted))


_PLAIN: dict[str, Any] = {"focus_threshold": 0.0, "distinct_articles_per_k": 0.0}
MODES: dict[str, dict[str, Any]] = {
    "hybrid": {},
    # The learned ranking (not the default), the fusion without its sentence stage and feedback, and the two
    # signals alone; these three without the article focus prior and the distinct-articles rule either.
    # (BM25's b is the index's: bench/tune_ranking.py compares with bm25s' default b as well.)
    "learned": {"ranker": "learned"},
    "rrf": {"ranker": "rrf", "sentence_weight": 0.0, "prf_weight": 0.0, **_PLAIN},
    "bm25": {"ranker": "rrf", "dense_weight": 0.0, "sentence_weight": 0.0, "prf_weight": 0.0, **_PLAIN},
    "dense": {"ranker": "rrf", "lexical_weight": 0.0, "sentence_weight": 0.0, "prf_weight": 0.0, **_PLAIN},
}


def run_eval(
    path: Path,
    index_dir: Path,
    k: int = 5,
    ask: bool = True,
    mode: str = "hybrid",
    settings: RetrieveSettings | None = None,
    as_of: bool = False,
) -> dict[str, Any]:
    """`rag eval`: load the index once and score every question of `path`."""
    rows = read_questions(path)
    base = get_retriever(index_dir)
    chosen = replace(settings or base.settings, **MODES[mode])
    retriever = Retriever(base.stored, base.embedder, chosen)
    report = evaluate(retriever, rows, k=k, ask=ask, as_of=as_of)
    report["mode"] = mode
    report["as_of"] = as_of
    report["index_chunks"] = base.stored.size
    return report
