"""The question analysed once: follow-ups, what is asked for, its focus, outlets named in it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.embed import HashEmbedder
from rag.errors import QueryError
from rag.query import analyse, answer_kind, clean_query, focus_of, is_follow_up
from rag.retrieve import get_retriever


class CountingEncoder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.calls += 1
        return super().encode(texts, batch_size, progress)


@pytest.mark.parametrize(
    ("question", "follow"),
    [
        ("Where were they held?", True),
        ("And how many civilians are there?", True),
        ("What about the port?", True),
        ("What did he say about it?", True),
        ("Who is the port director?", False),
        ("How many tents did Israel order from China?", False),
        ("Who led the American side in the virtual meeting?", False),
    ],
)
def test_follow_up_is_told_from_a_self_contained_question(question: str, follow: bool) -> None:
    assert is_follow_up(question) is follow


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many Hamas fighters are in Rafah?", "number"),
        ("What share of Jewish Israelis support it?", "number"),
        ("What does JNS say about the number of Hamas fighters in Rafah?", "number"),
        ("What did the ministry say on the death toll of the strike?", "number"),
        ("What figures do the reports give for the number of civilians in Rafah?", "number"),
        ("Which figures attended the gala?", "entity"),  # people of note, not numbers
        ("How long did the meeting last?", "duration"),
        ("When was the meeting held?", "date"),
        ("Who led the American side?", "name"),
        ("Where were the talks held?", "place"),
        ("Which company makes the pier?", "entity"),
        ("Why was the meeting cancelled?", None),
    ],
)
def test_what_a_question_asks_for(question: str, kind: str | None) -> None:
    assert answer_kind(question) == kind


def test_focus_is_what_is_asked_about() -> None:
    assert focus_of("How many Hamas fighters are in Rafah?") == "Hamas fighters"
    assert focus_of("What kind of link did they use?") == "link"
    assert focus_of("Which Israeli newspaper reported the poll?") == "Israeli newspaper"
    assert focus_of("Why was it cancelled?") == ""
    assert focus_of("What does JNS say about the number of Hamas fighters in Rafah?") == "Hamas fighters"
    assert focus_of("What did the ministry say on the death toll of the strike?") == "strike"
    assert focus_of("What figures do the reports give for the number of civilians in Rafah?") == "civilians Rafah"


def test_history_is_used_only_by_a_follow_up() -> None:
    embedder = HashEmbedder()
    history = ["What was reported about the hostage negotiations?"]
    follow = analyse("Where were they held?", embedder, history)
    alone = analyse("Who is the port director?", embedder, history)
    assert follow.context == history[0] and follow.context_vector is not None
    assert alone.context == "" and alone.context_vector is None and not alone.context_terms


def test_a_follow_up_naming_its_own_focus_replaces_the_earlier_one() -> None:
    embedder = HashEmbedder()
    history = ["How many Hamas fighters are in Rafah?"]
    civilians = analyse("And how many civilians are there?", embedder, history)
    assert civilians.context == "How many are in Rafah?"  # "there" is still Rafah
    assert "rafah" in civilians.context_terms and not {"hama", "fighter"} & set(civilians.context_terms)
    # Pointing back at what was asked ("they" = the battalions) keeps it.
    they = analyse("How many fighters do they have?", embedder, ["How many battalions are left in Rafah?"])
    assert they.context == "How many battalions are left in Rafah?" and "battalion" in they.context_terms
    # A follow-up with no focus of its own leans on the whole earlier question.
    where = analyse("Where were they held?", embedder, ["How many hostages did Hamas take?"])
    assert where.context == "How many hostages did Hamas take?"


def test_question_is_embedded_once_with_its_readings() -> None:
    embedder = CountingEncoder()
    q = analyse("How many fighters are there?", embedder, ["Hamas in Rafah"])
    assert embedder.calls == 1
    assert q.vector.shape == q.context_vector.shape == q.focus_vector.shape  # type: ignore[union-attr]


def test_outlet_named_in_the_question_scopes_it(fake_index: Path) -> None:
    retriever = get_retriever(fake_index)
    q = retriever.analyse("According to All Israel News, how large is the Hamas force?")
    assert q.outlets == ("All Israel News",) and q.named_outlets
    assert "All Israel News" not in q.text
    # Ticked outlets and a named one: the named one, if it is ticked.
    q = retriever.analyse("What does JNS say about tents?", outlets=["JNS", "The Times of Israel"])
    assert q.outlets == ("JNS",)
    assert q.without_outlets().outlets is None


@pytest.mark.parametrize("bad", [None, 5, "", "   ", "?!", "tents \ud800 China"])
def test_bad_questions_are_query_errors(bad: object) -> None:
    with pytest.raises(QueryError):
        clean_query(bad)
