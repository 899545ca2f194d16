"""rag.evaluate: QA lines are scored as score.py asks them, outlets ticked included."""

from __future__ import annotations

from pathlib import Path

from rag.evaluate import evaluate
from rag.retrieve import get_retriever

TENTS = {
    "id": "tents",
    "question": "How many tents did Israel order from China?",
    "gold_outlets": ["JNS"],
    "answer_groups": [["40,000"]],
    "type": "fact",
    "history": [],
}


def test_a_line_with_outlets_is_searched_in_those_outlets_only(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    everyone = evaluate(retriever, [TENTS], k=5, ask=False)
    post_only = evaluate(retriever, [{**TENTS, "outlets": ["The Jerusalem Post"]}], k=5, ask=False)
    assert everyone["recall@5"] == 1.0  # JNS reports the 40,000 tents
    assert post_only["recall@5"] == 0.0  # the Post does not: nothing of JNS may be retrieved


def test_precision_and_first_count_quotes_as_score_py_does(fake_index: Path) -> None:
    from rag.answer import answer_question
    from rag.evaluate import norm

    retriever = get_retriever(fake_index)
    rows = [TENTS, {**TENTS, "id": "tents-2", "answer_groups": [["a string no quote holds"]]}]
    report = evaluate(retriever, rows, k=5)
    quotes = [answer_question(retriever, str(r["question"])).quotes for r in rows]
    holds = [
        [any(norm(a) in norm(q.text) for g in r["answer_groups"] for a in g) for q in qs]
        for r, qs in zip(rows, quotes, strict=True)
    ]
    assert quotes[0] and holds[0][0]  # the fake index answers the tents question first
    assert report["precision"] == round(sum(map(sum, holds)) / sum(map(len, holds)), 3)
    assert report["first"] == 0.5  # the second line's strings are in no quote
    assert not any(key.startswith("_") for key in report)
