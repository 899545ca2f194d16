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
